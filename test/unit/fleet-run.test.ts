/** The fleet's pool (issue 30, item 4): bounded, in order, a throwing task never stops the others. */
import { describe, expect, it } from 'vitest'
import type { InventoryEntry } from '../../src/app/fleet/inventory.js'
import { type FleetOutcome, fleetOk, fleetTable, runFleet } from '../../src/app/fleet/run.js'
import type { LoadedConfig } from '../../src/config/load.js'

const entries = (n: number): InventoryEntry[] =>
  Array.from({ length: n }, (_, i) => ({ name: `s${i}.example.org`, path: `s${i}.toml`, loaded: {} as LoadedConfig }))

describe('runFleet', () => {
  it('never runs more than `concurrency` tasks at once, and runs every one', async () => {
    let running = 0
    let most = 0
    const started: string[] = []
    const rows = await runFleet(entries(9), 3, async (e) => {
      started.push(e.name)
      running++
      most = Math.max(most, running)
      await new Promise((r) => setImmediate(r))
      running--
      return { status: 'ok', summary: e.name }
    })
    expect(most).toBe(3)
    expect(started).toHaveLength(9)
    expect(rows.map((r) => r.summary)).toEqual(entries(9).map((e) => e.name))
  })

  it("a task that throws is that server's error row; the others finish; the table names it", async () => {
    const task = async (e: InventoryEntry): Promise<FleetOutcome> => {
      if (e.name === 's1.example.org') throw new Error('ssh: connection refused\n  at somewhere')
      return { status: 'ok', summary: 'fine' }
    }
    const list = [...entries(3), { name: 'bad.toml', path: 'bad.toml', error: 'bad.toml: unknown key "x"' }]
    const rows = await runFleet(list, 2, task)
    expect(rows.map((r) => r.status)).toEqual(['ok', 'error', 'ok', 'error'])
    expect(rows[1]?.summary).toBe('ssh: connection refused; at somewhere')
    expect(fleetOk(rows)).toBe(false)
    expect(fleetTable(rows).trimEnd().split('\n').at(-1)).toBe('2 of 4 server(s) failed: s1.example.org, bad.toml')
    expect(fleetOk(rows.filter((r) => r.status === 'ok'))).toBe(true)
  })
})
