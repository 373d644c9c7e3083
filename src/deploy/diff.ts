/**
 * A small unified diff for configuration files: a longest-common-subsequence table over lines
 * (quadratic, fine for files of a few thousand lines; beyond that the whole file is one hunk).
 */

type Op = { kind: ' ' | '-' | '+'; line: string }

const MAX_CELLS = 4_000_000

function splitLines(text: string): string[] {
  if (text === '') return []
  const lines = text.split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  return lines
}

function lineOps(a: string[], b: string[]): Op[] {
  // Common prefix and suffix first: most config edits touch a few lines.
  let start = 0
  while (start < a.length && start < b.length && a[start] === b[start]) start++
  let endA = a.length
  let endB = b.length
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--
    endB--
  }
  const midA = a.slice(start, endA)
  const midB = b.slice(start, endB)
  const ops: Op[] = a.slice(0, start).map((line) => ({ kind: ' ', line }))
  if (midA.length * midB.length > MAX_CELLS) {
    for (const line of midA) ops.push({ kind: '-', line })
    for (const line of midB) ops.push({ kind: '+', line })
  } else {
    const n = midA.length
    const m = midB.length
    // lcs[i][j] = LCS length of midA[i:] and midB[j:], flattened.
    const lcs = new Uint32Array((n + 1) * (m + 1))
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i * (m + 1) + j] =
          midA[i] === midB[j]
            ? lcs[(i + 1) * (m + 1) + j + 1]! + 1
            : Math.max(lcs[(i + 1) * (m + 1) + j]!, lcs[i * (m + 1) + j + 1]!)
      }
    }
    let i = 0
    let j = 0
    while (i < n || j < m) {
      if (i < n && j < m && midA[i] === midB[j]) {
        ops.push({ kind: ' ', line: midA[i]! })
        i++
        j++
      } else if (i < n && (j === m || lcs[(i + 1) * (m + 1) + j]! >= lcs[i * (m + 1) + j + 1]!)) {
        ops.push({ kind: '-', line: midA[i]! })
        i++
      } else {
        ops.push({ kind: '+', line: midB[j]! })
        j++
      }
    }
  }
  for (const line of a.slice(endA)) ops.push({ kind: ' ', line })
  return ops
}

/**
 * Unified diff of two texts ('' when equal), with `context` lines around each change.
 * Headers are `--- oldName` / `+++ newName`.
 */
export function unifiedDiff(oldText: string, newText: string, oldName: string, newName: string, context = 3): string {
  if (oldText === newText) return ''
  const ops = lineOps(splitLines(oldText), splitLines(newText))
  const changed = ops.map((op, idx) => (op.kind !== ' ' ? idx : -1)).filter((idx) => idx >= 0)
  const out = [`--- ${oldName}`, `+++ ${newName}`]
  if (changed.length === 0) {
    // Only the trailing newline differs.
    out.push('@@ -1 +1 @@', '\\ trailing newline differs')
    return `${out.join('\n')}\n`
  }
  // Group changes whose context windows overlap into hunks.
  const hunks: Array<[number, number]> = []
  for (const idx of changed) {
    const from = Math.max(0, idx - context)
    const to = Math.min(ops.length, idx + context + 1)
    const last = hunks[hunks.length - 1]
    if (last && from <= last[1]) last[1] = to
    else hunks.push([from, to])
  }
  // Line numbers at the start of each op.
  const oldLine: number[] = []
  const newLine: number[] = []
  let o = 1
  let n = 1
  for (const op of ops) {
    oldLine.push(o)
    newLine.push(n)
    if (op.kind !== '+') o++
    if (op.kind !== '-') n++
  }
  for (const [from, to] of hunks) {
    const slice = ops.slice(from, to)
    const oldCount = slice.filter((op) => op.kind !== '+').length
    const newCount = slice.filter((op) => op.kind !== '-').length
    const oldStart = oldCount === 0 ? oldLine[from]! - 1 : oldLine[from]!
    const newStart = newCount === 0 ? newLine[from]! - 1 : newLine[from]!
    out.push(`@@ -${oldStart},${oldCount} +${newStart},${newCount} @@`)
    for (const op of slice) out.push(`${op.kind}${op.line}`)
  }
  return `${out.join('\n')}\n`
}
