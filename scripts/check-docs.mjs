#!/usr/bin/env node
// Checks that every relative Markdown link in README.md, CONTRIBUTING.md and docs/**/*.md resolves:
// the file (or directory) exists and, for a `#anchor`, the target Markdown file has a heading whose
// GitHub-style slug is that anchor (or an explicit `id`/`name` anchor). Links with a scheme (https:,
// mailto:, …) are not fetched. Exits 1 listing the dead links. Node builtins only.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

function markdownFiles(dir) {
  const out = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...markdownFiles(path))
    else if (entry.name.endsWith('.md')) out.push(path)
  }
  return out
}

/** The lines outside fenced code blocks, with their 1-based numbers. */
function proseLines(text) {
  const lines = []
  let fence = null
  text.split('\n').forEach((line, i) => {
    const m = /^\s*(`{3,}|~{3,})/.exec(line)
    if (m) {
      if (fence === null) fence = m[1][0]
      else if (m[1][0] === fence) fence = null
      return
    }
    if (fence === null) lines.push({ line, number: i + 1 })
  })
  return lines
}

/** GitHub's heading slug: lower case, markup and punctuation dropped, spaces to hyphens. */
export function slug(heading) {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M}\p{Pc} -]/gu, '')
    .replace(/ /g, '-')
}

const anchorCache = new Map()
function anchors(file) {
  let set = anchorCache.get(file)
  if (set) return set
  set = new Set()
  const counts = new Map()
  for (const { line } of proseLines(readFileSync(file, 'utf8'))) {
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)
    if (h) {
      const base = slug(h[1])
      const n = counts.get(base) ?? 0
      counts.set(base, n + 1)
      set.add(n === 0 ? base : `${base}-${n}`)
    }
    for (const m of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) set.add(m[1])
  }
  anchorCache.set(file, set)
  return set
}

function links(file) {
  const found = []
  for (const { line, number } of proseLines(readFileSync(file, 'utf8'))) {
    const prose = line.replace(/(`+)(?:(?!\1).)*?\1/g, '')
    for (const m of prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) found.push({ target: m[1], number })
    const ref = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$/.exec(prose)
    if (ref) found.push({ target: ref[1], number })
  }
  return found
}

const files = ['README.md', 'CONTRIBUTING.md']
  .map((f) => join(root, f))
  .filter((f) => existsSync(f))
  .concat(existsSync(join(root, 'docs')) ? markdownFiles(join(root, 'docs')) : [])

const dead = []
let checked = 0
for (const file of files) {
  for (const { target, number } of links(file)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue
    checked++
    const hash = target.indexOf('#')
    const pathPart = decodeURIComponent(hash === -1 ? target : target.slice(0, hash))
    const anchor = hash === -1 ? '' : decodeURIComponent(target.slice(hash + 1))
    const where = `${relative(root, file)}:${number}`
    const dest = pathPart === '' ? file : resolve(dirname(file), pathPart)
    if (!existsSync(dest)) {
      dead.push(`${where}: ${target}: no such file ${relative(root, dest)}`)
      continue
    }
    if (anchor === '') continue
    if (statSync(dest).isDirectory() || !dest.endsWith('.md')) {
      dead.push(`${where}: ${target}: an anchor into ${relative(root, dest)}, which is not a Markdown file`)
      continue
    }
    if (!anchors(dest).has(anchor)) dead.push(`${where}: ${target}: no heading #${anchor} in ${relative(root, dest)}`)
  }
}

if (dead.length > 0) {
  console.error(`check-docs: ${dead.length} dead link(s) of ${checked} in ${files.length} files:`)
  for (const d of dead) console.error(`  ${d}`)
  process.exit(1)
}
console.log(`check-docs: ${checked} relative links in ${files.length} files resolve`)
