/**
 * The inventory of several servers: a directory of chatmail.toml files, one per server, each as
 * `chatmail init` wrote it (with deploy.destination when SSH goes elsewhere than root@DOMAIN).
 * The per-server file already holds everything about a server (its secrets, the doctor's account
 * that deploy saves there), so the inventory is only where those files are. A file that does not
 * load is one server that fails, not a stop for the others.
 */
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { type LoadedConfig, loadConfig } from '../../config/load.js'
import { cannotRun, describeFsError, oneLine } from '../../lib/errors.js'

export const DEFAULT_INVENTORY = 'servers'
const MAX_SERVERS = 500

/** One server of the inventory: its file, and its config or why it did not load. */
export interface InventoryEntry {
  /** The domain, or the file name when the file did not load. */
  name: string
  path: string
  loaded?: LoadedConfig
  error?: string
}

export async function loadInventory(dir: string): Promise<InventoryEntry[]> {
  let names: string[]
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.toml') && !n.startsWith('.')).sort()
  } catch (err) {
    throw describeFsError(err, dir, 'inventory directory')
  }
  if (names.length === 0) {
    throw cannotRun(
      `inventory ${dir} holds no .toml file`,
      'put one chatmail.toml per server there, e.g. servers/chat.example.org.toml',
    )
  }
  if (names.length > MAX_SERVERS) throw cannotRun(`inventory ${dir} holds more than ${MAX_SERVERS} files`)
  const entries = await Promise.all(
    names.map(async (n): Promise<InventoryEntry> => {
      const path = join(dir, n)
      try {
        const loaded = await loadConfig(path)
        return { name: loaded.config.domain, path, loaded }
      } catch (err) {
        return { name: n, path, error: oneLine((err as Error).message) }
      }
    }),
  )
  const seen = new Map<string, string>()
  for (const e of entries) {
    const other = seen.get(e.name)
    if (other)
      throw cannotRun(`inventory ${dir}: ${other} and ${e.path} are both for ${e.name}`, 'keep one file per server')
    seen.set(e.name, e.path)
  }
  return entries
}
