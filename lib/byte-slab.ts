// Small byte strings copied side by side into shared blocks. A buffered message
// body then costs its bytes and one view, not an ArrayBuffer of its own (about
// 250 bytes of bookkeeping, and a malloc'd chunk each: after a burst those
// fragment the heap and the process keeps the memory; `npm run bench`, phase g).
// A block is freed with its last view, so a view that may outlive its neighbours
// (a message set aside or held for a retry) takes its own copy: ownBytes.

const BLOCK_BYTES = 256 * 1024;
/** Larger bodies get their own buffer: a block holds at least this many bodies. */
const MAX_SHARED_BYTES = BLOCK_BYTES / 16;

export class ByteSlab {
  private block = new Uint8Array(0);
  private used = 0;

  /** A copy of `bytes` (never a view of them): in a shared block when small. */
  readonly copy = (bytes: Uint8Array): Uint8Array => {
    const n = bytes.byteLength;
    if (n > MAX_SHARED_BYTES) return new Uint8Array(bytes);
    if (this.used + n > this.block.byteLength) {
      this.block = new Uint8Array(BLOCK_BYTES);
      this.used = 0;
    }
    const view = this.block.subarray(this.used, this.used + n);
    view.set(bytes);
    this.used += n;
    return view;
  };
}

/** `bytes`, or a copy of them when they are a view into a larger (shared) buffer. */
export function ownBytes(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes);
}
