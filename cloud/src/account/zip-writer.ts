/**
 * A store-only (no compression) ZIP writer onto a file, entry by entry, with the entry's bytes in
 * memory one at a time. PNGs are already deflated, so compressing them again buys nothing and
 * costs CPU on the API; metadata JSON is small. Without ZIP64 a file holds at most 65,535 entries
 * and 4 GiB: `add` refuses past either with ZipLimitError (the export answers EXPORT_TOO_LARGE).
 * Format: PKWARE APPNOTE 6.3.10, sections 4.3.7 (local header), 4.3.12 (central directory), 4.3.16 (end).
 * Names are UTF-8 (general purpose bit 11).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';

export class ZipLimitError extends Error {}

const MAX_ENTRIES = 0xffff;
const MAX_OFFSET = 0xffffffff;

interface Entry {
  name: Buffer;
  crc: number;
  size: number;
  offset: number;
  time: number;
  date: number;
}

function dosDateTime(d: Date): { time: number; date: number } {
  const year = Math.max(1980, d.getUTCFullYear());
  return {
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2),
    date: ((year - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
  };
}

export class ZipFileWriter {
  readonly #file: FileHandle;
  readonly #entries: Entry[] = [];
  #offset = 0;

  private constructor(file: FileHandle) {
    this.#file = file;
  }

  static async create(path: string): Promise<ZipFileWriter> {
    return new ZipFileWriter(await open(path, 'wx', 0o600));
  }

  /** Bytes written so far. */
  get size(): number {
    return this.#offset;
  }

  async add(name: string, data: Uint8Array, modified = new Date()): Promise<void> {
    if (name.startsWith('/') || name.split('/').includes('..')) throw new TypeError(`unsafe entry name ${name}`);
    const nameBytes = Buffer.from(name, 'utf8');
    if (this.#entries.length + 1 >= MAX_ENTRIES) throw new ZipLimitError('too many entries for one zip');
    if (this.#offset + 30 + nameBytes.length + data.length + 64 * 1024 > MAX_OFFSET)
      throw new ZipLimitError('the zip would pass 4 GiB');
    const { time, date } = dosDateTime(modified);
    const entry: Entry = {
      name: nameBytes,
      crc: crc32(data) >>> 0,
      size: data.length,
      offset: this.#offset,
      time,
      date,
    };
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(20, 4); // version needed: 2.0
    h.writeUInt16LE(0x0800, 6); // UTF-8 names
    h.writeUInt16LE(0, 8); // stored
    h.writeUInt16LE(time, 10);
    h.writeUInt16LE(date, 12);
    h.writeUInt32LE(entry.crc, 14);
    h.writeUInt32LE(data.length, 18);
    h.writeUInt32LE(data.length, 22);
    h.writeUInt16LE(nameBytes.length, 26);
    h.writeUInt16LE(0, 28);
    await this.#write(h);
    await this.#write(nameBytes);
    await this.#write(data);
    this.#entries.push(entry);
  }

  /** Writes the central directory and closes the file. Returns the file's size in bytes. */
  async finish(): Promise<number> {
    const start = this.#offset;
    for (const e of this.#entries) {
      const c = Buffer.alloc(46);
      c.writeUInt32LE(0x02014b50, 0);
      c.writeUInt16LE(0x0314, 4); // made by: Unix, 2.0
      c.writeUInt16LE(20, 6);
      c.writeUInt16LE(0x0800, 8);
      c.writeUInt16LE(0, 10);
      c.writeUInt16LE(e.time, 12);
      c.writeUInt16LE(e.date, 14);
      c.writeUInt32LE(e.crc, 16);
      c.writeUInt32LE(e.size, 20);
      c.writeUInt32LE(e.size, 24);
      c.writeUInt16LE(e.name.length, 28);
      c.writeUInt32LE((0o100644 << 16) >>> 0, 38); // external attributes: a regular file, rw-r--r--
      c.writeUInt32LE(e.offset, 42);
      await this.#write(c);
      await this.#write(e.name);
    }
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(this.#entries.length, 8);
    end.writeUInt16LE(this.#entries.length, 10);
    end.writeUInt32LE(this.#offset - start, 12);
    end.writeUInt32LE(start, 16);
    await this.#write(end);
    await this.#file.close();
    return this.#offset;
  }

  async abort(): Promise<void> {
    await this.#file.close().catch(() => undefined);
  }

  async #write(b: Uint8Array): Promise<void> {
    let done = 0;
    while (done < b.length) {
      const { bytesWritten } = await this.#file.write(b, done, b.length - done);
      done += bytesWritten;
    }
    this.#offset += b.length;
  }
}
