/** Regular lines of ASCII armor, checked a run at a time (body.ts's fast path). Pure. */

const B64 = new Uint8Array(256)
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') B64[c.charCodeAt(0)] = 1

/**
 * Are the k lines from p regular: each L characters and its line end, starting and ending with
 * a base64 character, and no "-" anywhere among them? (A CR or LF inside a line ends it for
 * some parsers, and a line of theirs starting "--" could be a boundary delimiter.) The other
 * characters are not read one by one: they are the packet data the scanner skips or decodes.
 */
export function regularLines(buf: Buffer, p: number, k: number, L: number, cr: boolean): boolean {
  const stride = L + (cr ? 2 : 1)
  const end = p + k * stride
  for (let q = p; q < end; q += stride) {
    if (B64[buf[q] as number] !== 1 || B64[buf[q + L - 1] as number] !== 1) return false
    if (cr ? buf[q + L] !== 13 || buf[q + L + 1] !== 10 : buf[q + L] !== 10) return false
  }
  return buf.subarray(p, end).indexOf(45) < 0 // no "-", which base64 does not have
}
