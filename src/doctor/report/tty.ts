/**
 * On a terminal: a live listr2 tree on stderr, one branch per group, every check spinning until
 * its result is known. The tree only displays results; the runner decides them.
 */
import { Listr, ListrLogger, type ListrTask, ProcessOutput } from 'listr2'
import { printable } from '../../lib/printable.js'
import type { CheckDef, CheckResult } from '../model.js'

interface Pending {
  promise: Promise<CheckResult>
  resolve(r: CheckResult): void
}

function pending(): Pending {
  let resolve!: (r: CheckResult) => void
  const promise = new Promise<CheckResult>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

/** What the tree shows for a finished check: the text of a skip, a failure (with its fix) or a title. */
export function treeText(r: CheckResult): { kind: 'skip' | 'fail' | 'title'; text: string } {
  const line = printable(`${r.id}  ${r.detail}`)
  if (r.status === 'skip') return { kind: 'skip', text: line }
  if (r.status === 'fail') return { kind: 'fail', text: r.hint ? `${line}\nfix: ${printable(r.hint)}` : line }
  return { kind: 'title', text: r.status === 'warn' ? `(warn) ${line}` : line }
}

function checkTask(def: CheckDef, result: Promise<CheckResult>): ListrTask {
  return {
    title: printable(`${def.id}  ${def.title}`),
    task: async (_ctx, task) => {
      const shown = treeText(await result)
      if (shown.kind === 'skip') return task.skip(shown.text)
      if (shown.kind === 'fail') throw new Error(shown.text)
      task.title = shown.text
    },
  }
}

/** Starts the tree for these checks; feed it results with onResult, then await done(). */
export function ttyProgress(defs: readonly CheckDef[], stream: NodeJS.WriteStream = process.stderr) {
  const waiting = new Map(defs.map((d) => [d.id, pending()]))
  const groups = [...new Set(defs.map((d) => d.group))]
  const tasks: ListrTask[] = groups.map((group) => ({
    title: group,
    task: (_ctx, task) =>
      task.newListr(
        defs.filter((d) => d.group === group).map((d) => checkTask(d, (waiting.get(d.id) as Pending).promise)),
        { concurrent: true, exitOnError: false },
      ),
  }))
  const list = new Listr(tasks, {
    concurrent: true,
    exitOnError: false,
    registerSignalListeners: false,
    renderer: 'default',
    rendererOptions: {
      collapseSubtasks: false,
      collapseErrors: false,
      collapseSkips: false,
      logger: new ListrLogger({ processOutput: new ProcessOutput(stream, stream) }),
    },
  })
  const running = list.run().catch(() => undefined)
  return {
    onResult: (r: CheckResult) => waiting.get(r.id)?.resolve(r),
    done: () => running.then(() => undefined),
  }
}
