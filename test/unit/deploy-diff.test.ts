import { describe, expect, test } from 'vitest'
import { unifiedDiff } from '../../src/deploy/diff.js'

const lines = (n: number, from = 1) => Array.from({ length: n }, (_, i) => `line ${i + from}`)

describe('unifiedDiff', () => {
  test('equal texts give an empty diff', () => {
    expect(unifiedDiff('a\nb\n', 'a\nb\n', 'x', 'x')).toBe('')
  })

  test('one changed line with three lines of context', () => {
    const a = `${lines(10).join('\n')}\n`
    const b = a.replace('line 5\n', 'line five\n')
    expect(unifiedDiff(a, b, '/etc/a', '/etc/a')).toBe(
      [
        '--- /etc/a',
        '+++ /etc/a',
        '@@ -2,7 +2,7 @@',
        ' line 2',
        ' line 3',
        ' line 4',
        '-line 5',
        '+line five',
        ' line 6',
        ' line 7',
        ' line 8',
        '',
      ].join('\n'),
    )
  })

  test('distant changes make separate hunks; near ones merge', () => {
    const a = lines(30)
    const b = [...a]
    b[1] = 'changed 2'
    b[27] = 'changed 28'
    const d = unifiedDiff(`${a.join('\n')}\n`, `${b.join('\n')}\n`, 'f', 'f')
    expect(d.match(/^@@/gm)).toHaveLength(2)
    expect(d).toContain('@@ -1,5 +1,5 @@')
    expect(d).toContain('@@ -25,6 +25,6 @@')
    b[5] = 'changed 6'
    const merged = unifiedDiff(`${a.join('\n')}\n`, `${b.join('\n')}\n`, 'f', 'f')
    expect(merged).toContain('@@ -1,9 +1,9 @@')
  })

  test('insertions, deletions, new and removed files', () => {
    expect(unifiedDiff('a\nc\n', 'a\nb\nc\n', 'f', 'f')).toContain('@@ -1,2 +1,3 @@\n a\n+b\n c\n')
    expect(unifiedDiff('a\nb\nc\n', 'a\nc\n', 'f', 'f')).toContain('@@ -1,3 +1,2 @@\n a\n-b\n c\n')
    expect(unifiedDiff('', 'x\ny\n', '/dev/null', 'f')).toBe('--- /dev/null\n+++ f\n@@ -0,0 +1,2 @@\n+x\n+y\n')
    expect(unifiedDiff('x\n', '', 'f', '/dev/null')).toBe('--- f\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-x\n')
  })

  test('a replaced block lists removals before additions', () => {
    expect(unifiedDiff('k\na\nb\nz\n', 'k\nc\nd\nz\n', 'f', 'f')).toContain(' k\n-a\n-b\n+c\n+d\n z\n')
  })

  test('only a trailing newline differs', () => {
    expect(unifiedDiff('a', 'a\n', 'f', 'f')).toContain('trailing newline')
  })
})
