/**
 * Streaming line splitter over an open file: reads fixed-size chunks, yields complete lines with the
 * byte offset just past each one (the checkpoint position), and never holds more than one line plus
 * one chunk in memory.
 */
import type { FileHandle } from 'node:fs/promises';

/** One line of the file. */
export interface Line {
  /** The text, decoded as UTF-8, without the line terminator (`\n` or `\r\n`) or a leading BOM. */
  text: string;
  /** Byte offset of the line's first byte. */
  start: number;
  /** Byte offset just past the line terminator: where reading resumes after this line. */
  end: number;
  /** Set when the line was longer than the limit; `text` is then empty and the bytes were skipped. */
  oversizedBytes?: number;
}

const LF = 0x0a;
const CR = 0x0d;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** Reads lines from `fh` starting at byte `offset`. */
export class LineReader {
  readonly #fh: FileHandle;
  readonly #chunkBytes: number;
  readonly #maxLineBytes: number;
  /** File position of the next read. */
  #position: number;
  /** Bytes of the current unterminated line (not yet returned). */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** Offset of the first byte of the current unterminated line. */
  #lineStart: number;
  /** True while skipping the rest of an oversized line. */
  #skipping = false;

  constructor(fh: FileHandle, offset: number, opts: { chunkBytes?: number; maxLineBytes: number }) {
    this.#fh = fh;
    this.#position = offset;
    this.#lineStart = offset;
    this.#chunkBytes = opts.chunkBytes ?? 64 * 1024;
    this.#maxLineBytes = opts.maxLineBytes;
  }

  /** File position of the next read (everything before it has been read). */
  get position(): number {
    return this.#position;
  }

  /** Bytes read that belong to a line not yet terminated. */
  get pendingBytes(): number {
    return this.#skipping ? this.#position - this.#lineStart : this.#pendingBytes;
  }

  /** Reads one chunk. Returns the lines completed by it; `eof` when nothing more could be read. */
  async read(): Promise<{ lines: Line[]; eof: boolean }> {
    const chunk = Buffer.allocUnsafe(this.#chunkBytes);
    const { bytesRead } = await this.#fh.read(chunk, 0, chunk.length, this.#position);
    if (bytesRead === 0) return { lines: [], eof: true };
    const base = this.#position;
    this.#position += bytesRead;
    return { lines: this.#split(chunk.subarray(0, bytesRead), base), eof: false };
  }

  /**
   * Returns the unterminated tail as a final line (a file whose last line has no newline), or
   * undefined when there is none.
   */
  flushPartial(): Line | undefined {
    if (this.#skipping) {
      const line = this.#oversized(this.#position);
      this.#skipping = false;
      return line;
    }
    if (this.#pendingBytes === 0) return undefined;
    const bytes = Buffer.concat(this.#pending, this.#pendingBytes);
    const line = this.#line(bytes, this.#lineStart, this.#position);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#lineStart = this.#position;
    return line;
  }

  #split(chunk: Buffer, base: number): Line[] {
    const lines: Line[] = [];
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(LF, from);
      if (nl === -1) break;
      const end = base + nl + 1;
      if (this.#skipping) {
        lines.push(this.#oversized(end));
        this.#skipping = false;
      } else {
        const part = chunk.subarray(from, nl);
        const bytes =
          this.#pendingBytes === 0
            ? part
            : Buffer.concat([...this.#pending, part], this.#pendingBytes + part.length);
        this.#pending = [];
        this.#pendingBytes = 0;
        if (bytes.length > this.#maxLineBytes) {
          lines.push({ text: '', start: this.#lineStart, end, oversizedBytes: bytes.length });
        } else {
          lines.push(this.#line(bytes, this.#lineStart, end));
        }
      }
      this.#lineStart = end;
      from = nl + 1;
    }
    if (from < chunk.length && !this.#skipping) {
      const tail = chunk.subarray(from);
      if (this.#pendingBytes + tail.length > this.#maxLineBytes) {
        // Too long already: stop buffering and skip to the next newline.
        this.#pending = [];
        this.#pendingBytes = 0;
        this.#skipping = true;
      } else {
        this.#pending.push(tail);
        this.#pendingBytes += tail.length;
      }
    }
    return lines;
  }

  #oversized(end: number): Line {
    const start = this.#lineStart;
    this.#lineStart = end;
    return { text: '', start, end, oversizedBytes: end - start };
  }

  #line(bytes: Buffer, start: number, end: number): Line {
    let from = 0;
    let to = bytes.length;
    if (
      start === 0 &&
      bytes.length >= 3 &&
      bytes[0] === BOM[0] &&
      bytes[1] === BOM[1] &&
      bytes[2] === BOM[2]
    ) {
      from = 3;
    }
    if (to > from && bytes[to - 1] === CR) to--;
    return { text: bytes.toString('utf8', from, to), start, end };
  }
}
