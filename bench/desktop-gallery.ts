// The gallery half of `npm run bench:desktop`: first paint and scroll frame time of the real
// renderer's Gallery with 10,000 images in the library, in Debian's Chromium through the browser
// host. The reference, measured in the same run on the same images and browser, is the naive
// grid: one <img loading="lazy"> per image, no windowing. Also runnable alone:
//   node bench/desktop-gallery.ts [--images 10000]
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import type { ImageMetadata } from '@atelier/common';
import { systemClock } from '../src-main/services/clock.ts';
import { openDatabase } from '../src-main/services/db.ts';
import { createLibrary } from '../src-main/services/library.ts';
import { makePng } from '../src-main/services/testing/png-fixture.ts';
import { launchChromium, requireChromium } from '../test/e2e/chromium.ts';

const repo = path.resolve(import.meta.dirname, '..');

export interface GalleryBenchResult {
  images: number;
  seedMs: number;
  app: PaintAndScroll;
  naive: PaintAndScroll;
}
interface PaintAndScroll {
  /** Unit: ms from navigation start until the first image cell is in the DOM. */
  firstCellMs: number;
  /** Unit: ms from navigation start until every image cell on screen has its thumbnail decoded. */
  visibleThumbsMs: number;
  /** Unit: ms between animation frames while scrolling one screen per frame. */
  frameP50: number;
  frameP99: number;
  /** Frames over 50 ms (a "long" frame the user sees as a stutter). */
  longFrames: number;
  /** Image cells in the DOM at the end of the scroll. */
  domCells: number;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};

/** Fills a fresh profile's library through the desktop's own library service. */
function seed(userData: string, n: number): { ms: number; files: string[] } {
  const started = performance.now();
  mkdirSync(path.join(userData, 'images'), { recursive: true });
  const db = openDatabase(path.join(userData, 'library.db'));
  const library = createLibrary({ db, filesDir: path.join(userData, 'images'), clock: systemClock, urlFor: (f) => f });
  const pngs = Array.from({ length: 32 }, (_, i) =>
    makePng({ width: 128, height: 128, rgb: [(i * 37) % 256, (i * 91) % 256, 160] }),
  );
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const metadata: ImageMetadata = {
      positive_prompt: `bench image ${i}: a lighthouse at dusk`,
      negative_prompt: '',
      seed: i,
      steps: 4,
      cfg_scale: 1,
      scheduler: 'lcm',
      width: 128,
      height: 128,
      model: { name: 'bench' },
      generation_mode: 'txt2img',
      app_version: '0.1.0',
    };
    // With this urlFor, `url` is the file name; the host serves it as /files/<name>.
    files.push(
      library.addImage({
        png: pngs[i % pngs.length]!,
        origin: i % 3 === 0 ? 'cloud' : 'local',
        metadata,
        starred: i % 11 === 0,
      }).url,
    );
  }
  db.close();
  return { ms: performance.now() - started, files };
}

function startHost(userData: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const proc = spawn(
    process.execPath,
    [path.join(repo, 'src-main/host/main.ts'), '--user-data', userData, '--no-cloud'],
    {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const stop = () =>
    new Promise<void>((resolve) => {
      if (proc.exitCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGINT');
    });
  return new Promise((resolve, reject) => {
    const tail: string[] = [];
    const onLine = (line: string) => {
      tail.push(line);
      const m = /^OPEN (\S+)/.exec(line);
      if (m) resolve({ url: m[1]!, stop });
    };
    readline.createInterface({ input: proc.stdout! }).on('line', onLine);
    readline.createInterface({ input: proc.stderr! }).on('line', onLine);
    proc.once('exit', (code) => reject(new Error(`host exited (${code}):\n${tail.join('\n')}`)));
  });
}

// In-page probes, as strings because bench/ is type-checked without the DOM library.
/** Installed before the page's own scripts: notes when the first cell appears and when the visible thumbnails are decoded. */
const PAINT_PROBE = `(() => {
  const w = window;
  w.__bench = { firstCell: null, visibleThumbs: null };
  const visibleDone = () => {
    const cells = [...document.querySelectorAll('[data-bench-cell]')].filter((el) => {
      // On screen means inside the scroller's box: overscan rows are in the DOM but clipped.
      const r = el.getBoundingClientRect();
      const box = (el.closest('[role="listbox"], #s') || document.documentElement).getBoundingClientRect();
      return r.bottom > box.top && r.top < Math.min(box.bottom, innerHeight) && r.right > box.left && r.left < box.right;
    });
    return cells.length > 0 && cells.every((el) => { const img = el.querySelector('img'); return img && img.complete && img.naturalWidth > 0; });
  };
  const tick = () => {
    if (w.__bench.firstCell === null && document.querySelector('[data-bench-cell]')) w.__bench.firstCell = performance.now();
    if (w.__bench.firstCell !== null && w.__bench.visibleThumbs === null && visibleDone()) w.__bench.visibleThumbs = performance.now();
    if (w.__bench.visibleThumbs === null) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})()`;

/** Scrolls the scroller one screen per frame for `frames` frames and returns the frame intervals. */
const SCROLL_PROBE = (selector: string, frames: number) => `new Promise((resolve) => {
  const el = ${selector};
  const deltas = [];
  let last = performance.now();
  let n = 0;
  const step = (t) => {
    deltas.push(t - last);
    last = t;
    el.scrollTop += el.clientHeight * 0.9;
    if (el.scrollTop + el.clientHeight >= el.scrollHeight - 2) el.scrollTop = 0;
    if (++n < ${frames}) requestAnimationFrame(step);
    else resolve({ deltas: deltas.slice(1), domCells: document.querySelectorAll('[data-bench-cell]').length });
  };
  requestAnimationFrame((t) => { last = t; requestAnimationFrame(step); });
})`;

async function measure(page: Page, scroller: string): Promise<PaintAndScroll> {
  // Polled from here: the app's CSP forbids the eval that string predicates of waitForFunction need.
  const deadline = Date.now() + 120_000;
  while (!(await page.evaluate('!!(window.__bench && window.__bench.visibleThumbs !== null)'))) {
    if (Date.now() > deadline) {
      const state = await page.evaluate(
        `JSON.stringify({ bench: window.__bench, url: location.href, cells: document.querySelectorAll('[data-bench-cell]').length, options: document.querySelectorAll('[role="option"]').length, imgs: [...document.querySelectorAll('[data-bench-cell] img')].slice(0, 3).map((i) => [i.src, i.complete, i.naturalWidth]), body: document.body.innerText.slice(0, 300) })`,
      );
      throw new Error(`the visible thumbnails never finished loading: ${String(state)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const paint = (await page.evaluate('window.__bench')) as { firstCell: number; visibleThumbs: number };
  const scroll = (await page.evaluate(SCROLL_PROBE(scroller, 240))) as { deltas: number[]; domCells: number };
  return {
    firstCellMs: paint.firstCell,
    visibleThumbsMs: paint.visibleThumbs,
    frameP50: pct(scroll.deltas, 50),
    frameP99: pct(scroll.deltas, 99),
    longFrames: scroll.deltas.filter((d) => d > 50).length,
    domCells: scroll.domCells,
  };
}

export async function runGalleryBench(opts: { images?: number } = {}): Promise<GalleryBenchResult> {
  const n = opts.images ?? 10_000;
  requireChromium();
  // tmpfs when available: the library fsyncs every write, which would make seeding, not the UI, the bottleneck.
  const base = existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const userData = mkdtempSync(path.join(base, 'atelier-bench-gallery-'));
  const browserDir = mkdtempSync(path.join(os.tmpdir(), 'atelier-bench-chromium-'));
  const { ms: seedMs, files } = seed(userData, n);
  const host = await startHost(userData);
  const context = await launchChromium(browserDir);
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    // The app: load once so it keeps the token for this tab, then open straight on the Gallery.
    await page.goto(host.url);
    await page.getByLabel('Prompt', { exact: true }).waitFor();
    await page.addInitScript(PAINT_PROBE);
    const origin = new URL(host.url).origin;
    // Cells are marked for the probe by role; the naive page marks its own.
    await page.addInitScript(`new MutationObserver(() => {
      for (const el of document.querySelectorAll('[role="option"]:not([data-bench-cell])')) el.setAttribute('data-bench-cell', '');
    }).observe(document, { subtree: true, childList: true })`);
    // A hash change alone is a same-document navigation: reload so the page (and the probes) start fresh.
    await page.goto(`${origin}/#/gallery`);
    await page.reload();
    const app = await measure(page, `document.querySelector('[role="listbox"]')`);

    // The reference: the same images as a plain grid of lazy <img>, no windowing, from the same server.
    const token = new URL(host.url).hash.replace(/^#token=/, '');
    const urls = files.map((f) => `${origin}/files/${encodeURIComponent(f)}?token=${token}`);
    const naiveHtml = `<!doctype html><html><head><style>
      body{margin:0;font:14px system-ui} #s{height:100vh;overflow-y:auto}
      #g{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:8px}
      #g div{aspect-ratio:1;background:#eee} #g img{width:100%;height:100%;object-fit:cover;display:block}
    </style></head><body><div id="s"><div id="g"></div></div><script>
      const urls = ${JSON.stringify(urls)};
      const g = document.getElementById('g');
      const frag = document.createDocumentFragment();
      for (const u of urls) {
        const d = document.createElement('div');
        d.setAttribute('data-bench-cell', '');
        const img = document.createElement('img');
        img.loading = 'lazy';
        img.alt = '';
        img.src = u;
        d.appendChild(img);
        frag.appendChild(d);
      }
      g.appendChild(frag);
    </script></body></html>`;
    await page.route(`${origin}/bench-naive`, (route) => route.fulfill({ contentType: 'text/html', body: naiveHtml }));
    await page.goto(`${origin}/bench-naive`);
    const naive = await measure(page, `document.getElementById('s')`);
    return { images: n, seedMs, app, naive };
  } finally {
    await context.close();
    await host.stop();
    rmSync(userData, { recursive: true, force: true });
    rmSync(browserDir, { recursive: true, force: true });
  }
}

export function printGalleryBench(r: GalleryBenchResult): void {
  const f = (x: number) => `${x.toFixed(1)} ms`;
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  console.log(
    `\nGallery with ${r.images.toLocaleString('en-US')} images (seeded in ${(r.seedMs / 1000).toFixed(1)} s); reference: naive non-windowed grid, same images, same run`,
  );
  console.log(
    `  first cell            app ${f(r.app.firstCellMs)}   naive ${f(r.naive.firstCellMs)}   ratio ${ratio(r.app.firstCellMs, r.naive.firstCellMs)}`,
  );
  console.log(
    `  visible thumbs ready  app ${f(r.app.visibleThumbsMs)}   naive ${f(r.naive.visibleThumbsMs)}   ratio ${ratio(r.app.visibleThumbsMs, r.naive.visibleThumbsMs)}`,
  );
  console.log(
    `  scroll frame p50      app ${f(r.app.frameP50)}   naive ${f(r.naive.frameP50)}   ratio ${ratio(r.app.frameP50, r.naive.frameP50)}`,
  );
  console.log(
    `  scroll frame p99      app ${f(r.app.frameP99)}   naive ${f(r.naive.frameP99)}   ratio ${ratio(r.app.frameP99, r.naive.frameP99)}`,
  );
  console.log(`  long frames (>50 ms)  app ${r.app.longFrames}   naive ${r.naive.longFrames}   (of 239)`);
  console.log(`  image cells in DOM    app ${r.app.domCells}   naive ${r.naive.domCells}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--images');
  const images = i >= 0 ? Number(process.argv[i + 1]) : 10_000;
  printGalleryBench(await runGalleryBench({ images }));
}
