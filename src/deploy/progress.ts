/**
 * Progress of `deploy host`: on a terminal a live listr2 line (one task whose title follows the
 * engine's steps), otherwise plain `chatmail: …` lines. Both on stderr; stdout carries the result.
 */
import { Listr, ListrLogger, ProcessOutput } from 'listr2'

export interface DeployProgress {
  update(message: string): void
  /** Resolves when the display has finished drawing (after the work it wraps). */
  run<T>(work: () => Promise<T>): Promise<T>
}

export function plainProgress(write: (line: string) => void): DeployProgress {
  return { update: (m) => write(`chatmail: ${m}`), run: (work) => work() }
}

export function ttyProgress(title: string, stream: NodeJS.WriteStream = process.stderr): DeployProgress {
  let setTitle: (m: string) => void = () => {}
  return {
    update: (m) => setTitle(m),
    run: async <T>(work: () => Promise<T>): Promise<T> => {
      let result: { value: T } | undefined
      const list = new Listr(
        [
          {
            title,
            task: async (_ctx, task) => {
              setTitle = (m) => {
                task.title = m
              }
              result = { value: await work() }
              task.title = title
            },
          },
        ],
        {
          exitOnError: true,
          registerSignalListeners: false,
          renderer: 'default',
          rendererOptions: { logger: new ListrLogger({ processOutput: new ProcessOutput(stream, stream) }) },
        },
      )
      await list.run()
      return (result as { value: T }).value
    },
  }
}
