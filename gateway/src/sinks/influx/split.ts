/** A part of a batch (UTF-8 line protocol, in one or more buffers) with the number of lines it holds. */
export interface Piece {
  parts: Buffer[];
  lines: number;
}

/** The buffers as one (the rare paths that need it contiguous: a 413, gzip, the v2 client). */
export function joined(parts: Buffer[]): Buffer {
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

export function pieceBytes(piece: Piece): number {
  let n = 0;
  for (const p of piece.parts) n += p.length;
  return n;
}

const NL = 0x0a;

/**
 * Halves a newline-terminated body at the line boundary nearest its middle, for a server that
 * answered 413. Only this rare path scans the bytes; returns undefined for a single line.
 */
export function halve(piece: Piece): [Piece, Piece] | undefined {
  const body = joined(piece.parts);
  const mid = Math.floor(body.length / 2);
  // The end of the line that crosses the middle, or failing that the end of the line before it.
  let cut = body.indexOf(NL, mid);
  if (cut === -1 || cut >= body.length - 1) cut = mid > 0 ? body.lastIndexOf(NL, mid - 1) : -1;
  if (cut === -1 || cut >= body.length - 1) return undefined;
  const first = body.subarray(0, cut + 1);
  const second = body.subarray(cut + 1);
  const firstLines = countLines(first);
  return [
    { parts: [first], lines: firstLines },
    { parts: [second], lines: piece.lines - firstLines },
  ];
}

function countLines(bytes: Buffer): number {
  let n = 0;
  for (let i = bytes.indexOf(NL); i !== -1; i = bytes.indexOf(NL, i + 1)) n++;
  return n;
}
