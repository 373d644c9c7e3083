/**
 * Copies a restic repository between the host and the operator's machine, over the SSH session,
 * as files: restic names every file of a repository by the hash of its content and never changes
 * one, so a file present at both ends with the same size is the same file, and a copy moves only
 * what is new (an incremental backup's few new packs). Data before indexes before snapshots: a
 * copy cut short leaves no snapshot that names missing data, and running it again finishes it.
 * Each file lands under a temporary name and is renamed when complete.
 */
import { once } from 'node:events'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { cannotRun } from '../lib/errors.js'
import { shellQuote as q, type SshSession } from '../ssh/index.js'

/** One end of a copy: the files of a repository by relative path, with their sizes. */
export interface RepoEnd {
  describe: string
  list(): Promise<Map<string, number>>
  read(rel: string): Promise<Readable>
  write(rel: string, data: Readable): Promise<void>
  remove(rel: string): Promise<void>
  /** Makes what was written durable. */
  flush(): Promise<void>
}

export interface RepoCopy {
  files: number
  bytes: number
  removed: number
}

/** restic's own lock files are not part of what a repository holds. */
const skipped = (rel: string) => rel.startsWith('locks/')
const ORDER = ['data/', 'index/', 'keys/', 'config', 'snapshots/']
const rank = (rel: string) => {
  const i = ORDER.findIndex((p) => rel.startsWith(p))
  return i < 0 ? ORDER.length : i
}

/**
 * Makes `to` hold every file of `from` (locks aside); with `mirror`, also removes the files `from`
 * no longer has (what restic prune removed). A restore copies without it: it never deletes on the host.
 */
export async function copyRepository(from: RepoEnd, to: RepoEnd, mirror = true, concurrency = 4): Promise<RepoCopy> {
  const [want, have] = await Promise.all([from.list(), to.list()])
  const todo = [...want]
    .filter(([rel, size]) => !skipped(rel) && have.get(rel) !== size)
    .sort((a, b) => rank(a[0]) - rank(b[0]) || a[0].localeCompare(b[0]))
  let bytes = 0
  // Rank by rank, so a later rank (snapshots) never lands before an earlier one (their data).
  for (let r = 0; r <= ORDER.length; r++) {
    const queue = todo.filter(([rel]) => rank(rel) === r)
    const worker = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        await to.write(next[0], await from.read(next[0]))
        bytes += next[1]
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
  }
  await to.flush()
  const gone = mirror ? [...have.keys()].filter((rel) => !skipped(rel) && !want.has(rel)) : []
  for (const rel of gone) await to.remove(rel)
  return { files: todo.length, bytes, removed: gone.length }
}

/** A repository in a directory of this machine (mode 0700; files 0600). */
export function localRepo(dir: string): RepoEnd {
  return {
    describe: dir,
    async list() {
      const out = new Map<string, number>()
      const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return []
        throw cannotRun(`cannot read the backup directory ${dir}: ${e.code ?? e.message}`)
      })
      for (const e of entries) {
        if (!e.isFile() || e.name.endsWith('.partial')) continue
        const path = join((e as { parentPath?: string }).parentPath ?? e.path, e.name)
        out.set(path.slice(dir.length + 1), (await stat(path)).size)
      }
      return out
    },
    read: async (rel) => createReadStream(join(dir, rel)),
    async write(rel, data) {
      const path = join(dir, rel)
      await mkdir(dirname(path), { recursive: true, mode: 0o700 })
      const tmp = `${path}.partial`
      await pipeline(data, createWriteStream(tmp, { mode: 0o600 }))
      const fh = await open(tmp, 'r')
      await fh.sync().finally(() => fh.close())
      await rename(tmp, path)
    },
    remove: (rel) => rm(join(dir, rel), { force: true }),
    async flush() {},
  }
}

/** The repository on the host, read and written as root through the session. */
export function hostRepo(session: SshSession, dir: string): RepoEnd {
  const run = async (command: string, input?: Readable): Promise<void> => {
    const channel = await session.open(command)
    const err: Buffer[] = []
    channel.stderr.on('data', (d: Buffer) => err.push(d))
    const exit = once(channel, 'exit') as Promise<[number | null]>
    if (input) await pipeline(input, channel)
    else channel.end()
    const [code] = await exit
    if (code !== 0)
      throw cannotRun(`on the host: ${command.split(' ')[0]} failed: ${Buffer.concat(err).toString().trim()}`)
  }
  return {
    describe: `${session.target.host}:${dir}`,
    async list() {
      const r = await session.exec(
        `if [ -d ${q(dir)} ]; then find ${q(dir)} -type f ! -name '*.partial' -printf '%P\\t%s\\n'; fi`,
      )
      if (r.code !== 0) throw cannotRun(`cannot list ${dir} on the host: ${r.stderr.trim()}`)
      return new Map(
        r.stdout
          .split('\n')
          .filter(Boolean)
          .map((l) => l.split('\t') as [string, string])
          .map(([rel, size]) => [rel, Number(size)]),
      )
    },
    async read(rel) {
      const channel = await session.open(`cat -- ${q(join(dir, rel))}`)
      channel.on('exit', (code: number | null) => {
        if (code !== 0) channel.emit('error', cannotRun(`cannot read ${join(dir, rel)} on the host`))
      })
      return channel
    },
    write: (rel, data) => {
      const path = join(dir, rel)
      const tmp = `${path}.partial`
      return run(
        `sh -c ${q(`umask 077 && mkdir -p "$(dirname "$1")" && cat >"$2" && mv -f "$2" "$1"`)} - ${q(path)} ${q(tmp)}`,
        data,
      )
    },
    remove: (rel) => run(`rm -f -- ${q(join(dir, rel))}`),
    flush: () => run('sync'),
  }
}
