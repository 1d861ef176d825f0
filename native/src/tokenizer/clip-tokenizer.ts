/**
 * The CLIP byte-level BPE tokenizer as OpenAI's `simple_tokenizer.py` defines it (and Hugging
 * Face's CLIPTokenizer reproduces): HTML unescaping, whitespace normalisation, lower-casing, the
 * CLIP pre-tokeniser regex, bytes mapped to printable unicode, BPE with `</w>` word ends, start
 * and end tokens, truncation and padding to the text encoder's fixed length.
 *
 * Differences from the reference: `ftfy.fix_text` (mojibake repair) is not applied — it is the
 * identity on well-formed text — and HTML unescaping knows numeric references plus the common
 * named entities rather than all 2,231 of HTML5.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const START_TOKEN = '<|startoftext|>';
export const END_TOKEN = '<|endoftext|>';

/** The 188 printable bytes keep their character; the rest map to U+0100 onwards (bytes_to_unicode). */
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const table: string[] = new Array<string>(256);
  for (const b of bs) table[b] = String.fromCodePoint(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (table[b] === undefined) table[b] = String.fromCodePoint(256 + n++);
  return table;
}
const BYTE_ENCODER = bytesToUnicode();

/** Python's str.isspace() set, so normalisation matches `re.sub(r'\s+', ' ', text)` on str. */
const WS = '\\t\\n\\v\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WS_RUN = new RegExp(`[${WS}]+`, 'g');
const WS_TRIM = new RegExp(`^[${WS}]+|[${WS}]+$`, 'g');
const PRETOKENIZE = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+/giu;

const NAMED_ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: '\u00a0',
  copy: '©',
  reg: '®',
  trade: '™',
  hellip: '…',
  mdash: '—',
  ndash: '–',
  lsquo: '‘',
  rsquo: '’',
  ldquo: '“',
  rdquo: '”',
  laquo: '«',
  raquo: '»',
  middot: '·',
  bull: '•',
  deg: '°',
  plusmn: '±',
  times: '×',
  divide: '÷',
  euro: '€',
  pound: '£',
  yen: '¥',
  cent: '¢',
  sect: '§',
  para: '¶',
  eacute: 'é',
  egrave: 'è',
  agrave: 'à',
  ccedil: 'ç',
  uuml: 'ü',
  ouml: 'ö',
  auml: 'ä',
  szlig: 'ß',
  ntilde: 'ñ',
};
/** Entities HTML5 also accepts without the semicolon (html.unescape honours these). */
const LEGACY = new Set(['amp', 'lt', 'gt', 'quot', 'nbsp', 'copy', 'reg']);

function unescapeHtml(text: string): string {
  return text.replace(/&(#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z][a-zA-Z0-9]*)(;?)/g, (m, body: string, semi: string) => {
    if (body.startsWith('#')) {
      const cp = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return '\ufffd';
      return String.fromCodePoint(cp);
    }
    const ch = NAMED_ENTITIES[body];
    if (ch === undefined || (!semi && !LEGACY.has(body))) return m;
    return ch;
  });
}

/** The clean-up `encode` applies before splitting: unescape twice, collapse whitespace, lower-case. */
export function normalizeText(text: string): string {
  const unescaped = unescapeHtml(unescapeHtml(text)).replace(WS_TRIM, '');
  return unescaped.replace(WS_RUN, ' ').replace(WS_TRIM, '').toLowerCase();
}

export interface ClipTokenizerOptions {
  /** token → id, as in vocab.json. */
  vocab: Record<string, number>;
  /** Merge rules in priority order, each "left right" (merges.txt without its version line). */
  merges: string[];
  /** Padded and truncated length; SD's text encoders take 77. */
  maxLength?: number;
  /** The padding token; SD 1.x pads with <|endoftext|>, SD 2.x and Turbo with "!". */
  padToken?: string;
}

export class ClipTokenizer {
  readonly maxLength: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  private readonly vocab: Map<string, number>;
  private readonly ranks: Map<string, number>;
  private readonly cache = new Map<string, string[]>();

  constructor(opts: ClipTokenizerOptions) {
    this.vocab = new Map(Object.entries(opts.vocab));
    this.ranks = new Map(opts.merges.map((m, i) => [m, i]));
    this.maxLength = opts.maxLength ?? 77;
    this.bosId = this.idOf(START_TOKEN);
    this.eosId = this.idOf(END_TOKEN);
    this.padId = this.idOf(opts.padToken ?? END_TOKEN);
    if (this.maxLength < 2) throw new Error(`tokenizer max length ${this.maxLength} leaves no room for start and end`);
  }

  /**
   * Reads a Hugging Face tokenizer folder: vocab.json, merges.txt and, when present,
   * tokenizer_config.json / special_tokens_map.json for the pad token and maximum length.
   */
  static fromDir(dir: string, fallbackMaxLength = 77): ClipTokenizer {
    const vocab = JSON.parse(readFileSync(path.join(dir, 'vocab.json'), 'utf8')) as Record<string, number>;
    const lines = readFileSync(path.join(dir, 'merges.txt'), 'utf8').split('\n');
    const start = lines[0]?.startsWith('#version') ? 1 : 0;
    // The reference keeps exactly 49152 - 256 - 2 merges; trailing lines beyond that are ignored.
    const merges = lines.slice(start, start + 49152 - 256 - 2).filter((l) => l.trim() !== '');
    const config = readJsonIfExists(path.join(dir, 'tokenizer_config.json'));
    const special = readJsonIfExists(path.join(dir, 'special_tokens_map.json'));
    const padToken = tokenContent(config?.pad_token) ?? tokenContent(special?.pad_token) ?? END_TOKEN;
    const configured = typeof config?.model_max_length === 'number' ? config.model_max_length : undefined;
    // Some configs carry a huge sentinel (1e30) meaning "no limit"; the encoder's length decides then.
    const maxLength = configured !== undefined && configured <= 4096 ? configured : fallbackMaxLength;
    return new ClipTokenizer({ vocab, merges, padToken, maxLength });
  }

  /** BPE token ids of `text`, without start/end tokens, padding or truncation. */
  encodeText(text: string): number[] {
    const ids: number[] = [];
    for (const match of normalizeText(text).matchAll(PRETOKENIZE)) {
      const piece = match[0];
      if (piece === START_TOKEN || piece === END_TOKEN) {
        ids.push(this.idOf(piece));
        continue;
      }
      let mapped = '';
      for (const b of Buffer.from(piece, 'utf8')) mapped += BYTE_ENCODER[b]!;
      for (const token of this.bpe(mapped)) ids.push(this.idOf(token));
    }
    return ids;
  }

  /** [start] + tokens + [end], truncated so the end token survives, padded to `maxLength`. */
  encode(text: string): Int32Array {
    const body = this.encodeText(text).slice(0, this.maxLength - 2);
    const out = new Int32Array(this.maxLength).fill(this.padId);
    out[0] = this.bosId;
    out.set(body, 1);
    out[body.length + 1] = this.eosId;
    return out;
  }

  private idOf(token: string): number {
    const id = this.vocab.get(token);
    if (id === undefined) throw new Error(`token ${JSON.stringify(token)} is not in the vocabulary`);
    return id;
  }

  private bpe(token: string): string[] {
    const cached = this.cache.get(token);
    if (cached) return cached;
    const chars = [...token];
    let word = [...chars.slice(0, -1), `${chars[chars.length - 1]}</w>`];
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const rank = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = i;
        }
      }
      if (best < 0) break;
      const first = word[best]!;
      const second = word[best + 1]!;
      const merged: string[] = [];
      for (let i = 0; i < word.length;) {
        if (word[i] === first && i < word.length - 1 && word[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(word[i]!);
          i += 1;
        }
      }
      word = merged;
    }
    if (this.cache.size < 10_000) this.cache.set(token, word);
    return word;
  }
}

function readJsonIfExists(file: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** A special token as tokenizer configs write it: a string or an AddedToken object. */
function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string')
    return (v as { content: string }).content;
  return undefined;
}
