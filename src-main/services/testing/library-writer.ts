// Child process for the crash-safety test: adds images in a loop until killed, printing a line
// after each committed insert. Usage: node library-writer.ts <userDataDir>
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { systemClock } from '../clock.ts';
import { openDatabase } from '../db.ts';
import { createLibrary } from '../library.ts';
import { makePng } from './png-fixture.ts';

const dir = process.argv[2]!;
mkdirSync(path.join(dir, 'images'), { recursive: true });
const db = openDatabase(path.join(dir, 'library.db'));
const library = createLibrary({ db, filesDir: path.join(dir, 'images'), clock: systemClock, urlFor: (f) => f });
for (let i = 0; ; i++) {
  // Big enough that the kill often lands inside a write.
  const img = library.addImage({ png: makePng({ width: 256, height: 64, rgb: [i % 256, 7, 9] }), origin: 'local' });
  process.stdout.write(`committed ${img.id}\n`);
}
