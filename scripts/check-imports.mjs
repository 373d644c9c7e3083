#!/usr/bin/env node
// The import graph of src/, checked against the layers of docs/ARCHITECTURE.md. Fails (exit 1,
// one line per violation) on
//   - an import cycle between files (static, type-only and dynamic imports all count), and
//   - an import from a folder of src/ into a folder the layers put at its level or above it.
// `node scripts/check-imports.mjs --graph` prints the folder graph instead (folder -> folders it
// imports, with the number of imports), `--files` every file edge; both exit 0. `--src DIR` checks
// another tree (the tests' fixtures) against the same layers, without the allow-list.
// Node builtins and the TypeScript compiler (a devDependency) only.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
const srcArg = args.indexOf('--src')
const src = srcArg >= 0 ? resolve(args[srcArg + 1] ?? '.') : join(root, 'src')

/**
 * The layers, top first: a folder imports only from folders in layers below its own (and from
 * itself). Folders in one layer are independent of each other. `cli.ts` is the file at the top of
 * src/; every other folder is the first directory under src/ (src/deploy/services/x.ts is deploy).
 */
export const LAYERS = [
  ['cli.ts'],
  // Entry points: the oclif commands (thin), and the programs that run on the server (bundled).
  ['commands', 'remote'],
  // One application module per command that composes several parts ("deploy, then doctor").
  ['app'],
  // Deploying and checking are independent: deploy does not import the doctor, nor it deploy.
  ['deploy', 'doctor'],
  ['dns', 'signup', 'turn', 'relay'],
  // What is on a chatmail host (paths, units, ports), computed from the config.
  ['server'],
  ['ssh'],
  ['config'],
  ['protocols'],
  ['lib'],
]

/**
 * Known violations not yet fixed, so that lint stays green and no new one can be added. Each entry
 * is "from -> to" (paths under src/) for a layer violation, or "cycle: a, b, c" (the files of one
 * cycle, sorted) for a cycle. An entry that no longer matches anything is itself reported, so the
 * list only shrinks.
 */
export const ALLOWED = []

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) return walk(p)
    return /\.ts$/.test(name) && !/\.d\.ts$/.test(name) ? [p] : []
  })
}

const rel = (p) => relative(src, p).split('\\').join('/')
const folderOf = (file) => (file.includes('/') ? file.slice(0, file.indexOf('/')) : file)

/** The relative module specifiers a file imports: `import`, `export … from`, `import()`, `import type`. */
function specifiers(path) {
  const sf = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true)
  const out = []
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      const kind = node.importClause?.isTypeOnly || node.isTypeOnly ? 'type' : 'static'
      out.push({ spec: node.moduleSpecifier.text, kind })
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      out.push({ spec: node.arguments[0].text, kind: 'dynamic' })
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      out.push({ spec: node.argument.literal.text, kind: 'type' })
    }
    ts.forEachChild(node, visit)
  }
  visit(sf)
  return out.filter((s) => s.spec.startsWith('.'))
}

/** `./x.js` of a TypeScript source is ./x.ts (or ./x/index.ts). */
function resolveSpec(from, spec) {
  const base = resolve(dirname(from), spec)
  for (const c of [base.replace(/\.js$/, '.ts'), base, `${base}.ts`, join(base, 'index.ts')]) {
    try {
      if (statSync(c).isFile()) return c
    } catch {}
  }
  return undefined
}

export function importGraph() {
  const edges = []
  for (const path of walk(src)) {
    for (const { spec, kind } of specifiers(path)) {
      const target = resolveSpec(path, spec)
      if (target?.startsWith(src)) edges.push({ from: rel(path), to: rel(target), kind })
    }
  }
  return edges
}

const layerOf = new Map(LAYERS.flatMap((folders, i) => folders.map((f) => [f, i])))

export function layerViolations(edges) {
  const out = []
  for (const e of edges) {
    const a = folderOf(e.from)
    const b = folderOf(e.to)
    if (a === b) continue
    const la = layerOf.get(a)
    const lb = layerOf.get(b)
    if (la === undefined) out.push({ key: `${e.from} -> ${e.to}`, why: `src/${a} is in no layer of LAYERS` })
    else if (lb === undefined) out.push({ key: `${e.from} -> ${e.to}`, why: `src/${b} is in no layer of LAYERS` })
    else if (lb <= la) {
      const where = lb === la ? 'in the same layer' : 'above it'
      out.push({ key: `${e.from} -> ${e.to}`, why: `${e.kind} import: ${b} is ${where}, ${a} may not import it` })
    }
  }
  return out
}

/** Tarjan's strongly connected components of the file graph: each one with two or more files is a cycle. */
export function cycles(edges) {
  const next = new Map()
  for (const e of edges) {
    if (!next.has(e.from)) next.set(e.from, new Set())
    next.get(e.from).add(e.to)
  }
  const nodes = [...new Set(edges.flatMap((e) => [e.from, e.to]))].sort()
  const index = new Map()
  const low = new Map()
  const stack = []
  const on = new Set()
  const out = []
  let i = 0
  const strong = (v) => {
    index.set(v, i)
    low.set(v, i++)
    stack.push(v)
    on.add(v)
    for (const w of [...(next.get(v) ?? [])].sort()) {
      if (!index.has(w)) {
        strong(w)
        low.set(v, Math.min(low.get(v), low.get(w)))
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), index.get(w)))
    }
    if (low.get(v) === index.get(v)) {
      const scc = []
      let w
      do {
        w = stack.pop()
        on.delete(w)
        scc.push(w)
      } while (w !== v)
      if (scc.length > 1 || next.get(v)?.has(v)) out.push(scc.sort())
    }
  }
  for (const v of nodes) if (!index.has(v)) strong(v)
  return out.map((scc) => ({ key: `cycle: ${scc.join(', ')}`, why: `${scc.length} files import each other` }))
}

function main() {
  const edges = importGraph()
  if (args.includes('--files')) {
    for (const e of edges) console.log(`${e.from} -> ${e.to}${e.kind === 'static' ? '' : ` (${e.kind})`}`)
    return 0
  }
  if (args.includes('--graph')) {
    const counts = new Map()
    for (const e of edges) {
      const a = folderOf(e.from)
      const b = folderOf(e.to)
      if (a !== b) counts.set(`${a} -> ${b}`, (counts.get(`${a} -> ${b}`) ?? 0) + 1)
    }
    for (const [k, n] of [...counts].sort()) console.log(`${k} (${n})`)
    return 0
  }
  const found = [...cycles(edges), ...layerViolations(edges)]
  const allowList = srcArg >= 0 ? [] : ALLOWED
  const allowed = new Set(allowList)
  const problems = found.filter((v) => !allowed.has(v.key)).map((v) => `${v.key}: ${v.why}`)
  const keys = new Set(found.map((v) => v.key))
  for (const a of allowList) if (!keys.has(a)) problems.push(`${a}: on the allow-list but no longer found; remove it`)
  for (const p of problems) console.log(p)
  if (problems.length > 0) {
    console.error(`check-imports: ${problems.length} problem(s); the layers are in docs/ARCHITECTURE.md`)
    return 1
  }
  return 0
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main()
