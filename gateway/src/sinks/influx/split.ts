/** A part of a batch's body with the number of lines it holds. */
export interface Piece {
  body: string;
  lines: number;
}

/**
 * Halves a newline-terminated body at the line boundary nearest its middle, for a server that
 * answered 413. Only this rare path scans the text; returns undefined for a single line.
 */
export function halve(piece: Piece): [Piece, Piece] | undefined {
  const { body } = piece;
  const mid = Math.floor(body.length / 2);
  // The end of the line that crosses the middle, or failing that the end of the line before it.
  let cut = body.indexOf('\n', mid);
  if (cut === -1 || cut >= body.length - 1) cut = body.lastIndexOf('\n', mid - 1);
  if (cut === -1 || cut >= body.length - 1) return undefined;
  const first = body.slice(0, cut + 1);
  const second = body.slice(cut + 1);
  const firstLines = countLines(first);
  return [
    { body: first, lines: firstLines },
    { body: second, lines: piece.lines - firstLines },
  ];
}

function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}
