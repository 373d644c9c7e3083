/**
 * Every command's `--help` (the built CLI, every command of oclif.manifest.json, the root and the
 * topics) reads well on an 80-column terminal: no line wider than 80 columns, and no line broken
 * mid-sentence.
 *
 * "Broken mid-sentence", the practical rule: a line that does not end a sentence or a clause
 * (its last character is not one of . : ! ?) while the next line of the same paragraph continues
 * it (starts with a lower-case letter, and is not a table row such as "json     {…}"), although
 * the next line's first word would have fitted on it within 80 columns. Section titles (USAGE,
 * COMMANDS) and command lines ("$ chatmail …", as oclif wraps them) are not sentences. A wrapper
 * fills each line before it breaks, so such a break was written by hand and then wrapped again:
 * "DKIM (the\npublic key …".
 */
import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.js'

const WIDTH = 80
const ROOT = new URL('../../', import.meta.url)

/** The problems of one help text: lines too wide, and lines broken mid-sentence. */
function helpProblems(text: string): string[] {
  const lines = text.split('\n').map((l) => l.trimEnd())
  const problems: string[] = []
  const columns = (l: string) => [...l].length
  let command = false
  lines.forEach((line, i) => {
    if (columns(line) > WIDTH) problems.push(`wider than ${WIDTH} columns (${columns(line)}): ${line}`)
    // A command line ("$ chatmail init [DOMAIN] [--profile …]", in USAGE and EXAMPLES) is not prose.
    if (lines[i - 1]?.trim() === '' || i === 0) command = line.trim().startsWith('$ ')
    else if (line.trim().startsWith('$ ')) command = true
    const next = lines[i + 1]?.trim() ?? ''
    if (command || line.trim() === '' || !/^[a-z]/.test(next)) return
    // A section title (USAGE, COMMANDS), a sentence or clause end, a table row ("json     {…}").
    if (/^[A-Z ]+$/.test(line) || /[.:!?]$/.test(line) || /^\S+ {2,}\S/.test(next)) return
    const word = next.split(/\s/)[0] as string
    if (columns(line) + 1 + columns(word) <= WIDTH) problems.push(`broken mid-sentence: "${line.trim()}" / "${next}"`)
  })
  return problems
}

describe('the help rule itself', () => {
  it('catches a hand-made break that the wrapper kept, and a line too wide', () => {
    const broken = [
      '  Prints every record the server needs, as BIND zone lines: A/AAAA, MX, SPF,',
      '  DKIM (the',
      '  public key, read from the host over SSH), DMARC.',
    ].join('\n')
    expect(helpProblems(broken)).toEqual([expect.stringMatching(/^broken mid-sentence: "DKIM \(the"/)])
    expect(helpProblems(`  ${'x'.repeat(79)}`)).toEqual([expect.stringMatching(/^wider than 80/)])
  })

  it('accepts full lines, sentence ends, list items and flag columns', () => {
    const fine = [
      '  Prints every record the server needs, as BIND zone lines: A/AAAA, MX, SPF,',
      '  DKIM (the public key, read from the host over SSH), DMARC and CAA.',
      '',
      '  Exit codes:',
      '    0  nothing failed',
      '  -c, --config=FILE   [default: chatmail.toml, env: CHATMAIL_CONFIG] Path of the',
      '                      config file.',
    ].join('\n')
    expect(helpProblems(fine)).toEqual([])
  })
})

async function commandIds(): Promise<string[]> {
  const manifest = JSON.parse(await readFile(new URL('oclif.manifest.json', ROOT), 'utf8')) as {
    commands: Record<string, unknown>
  }
  return Object.keys(manifest.commands).map((id) => id.replaceAll(':', ' '))
}

describe('--help on an 80-column terminal', async () => {
  const ids = await commandIds()
  const topics = [...new Set(ids.filter((id) => id.includes(' ')).map((id) => id.split(' ')[0] as string))]

  it('knows every command', () => {
    expect(ids).toEqual(expect.arrayContaining(['deploy host', 'dns', 'doctor', 'init', 'invite', 'turn-cred']))
  })

  for (const args of [[], ...topics.map((t) => [t]), ...ids.map((id) => id.split(' '))]) {
    const name = ['chatmail', ...args, '--help'].join(' ')
    it(`${name}: no line wider than 80 columns or broken mid-sentence`, async () => {
      const r = await runCli([...args, '--help'], { cwd: ROOT.pathname, env: { COLUMNS: String(WIDTH) } })
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout.length).toBeGreaterThan(100)
      expect(helpProblems(r.stdout)).toEqual([])
    })
  }
})
