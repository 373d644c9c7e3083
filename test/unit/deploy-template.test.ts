import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { templateFile } from '../../src/deploy/resources.js'
import { loadTemplate, renderTemplate } from '../../src/server/template.js'

describe('templates', () => {
  test('replaces {{name}} placeholders, with or without inner spaces', () => {
    expect(renderTemplate('realm={{ domain }}\nport={{port}}\n{{on}}', { domain: 'x.org', port: 3478, on: true })).toBe(
      'realm=x.org\nport=3478\ntrue',
    )
  })

  test('a missing value or an unused value is an error naming the template', () => {
    expect(() => renderTemplate('{{a}} {{b}}', { a: 1 }, 'nginx.conf')).toThrow('nginx.conf: no value for {{b}}')
    expect(() => renderTemplate('{{a}}', { a: 1, typo: 2 }, 't')).toThrow('values given but not used: typo')
  })

  test('leaves other braces alone (nginx, shell)', () => {
    expect(renderTemplate('location / { return 204; } $HOME {{ a }}', { a: 'y' })).toBe(
      'location / { return 204; } $HOME y',
    )
  })

  test('loads from a templates directory; a missing template is a clear error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tpl-'))
    writeFileSync(join(dir, 'a.conf'), 'x={{x}}\n')
    expect(await loadTemplate('a.conf', { x: 1 }, dir)).toBe('x=1\n')
    await expect(loadTemplate('missing.conf', {}, dir)).rejects.toThrow(/template missing.conf not found/)
    const f = await templateFile(
      '/etc/a.conf',
      'a.conf',
      { x: 2 },
      { mode: '0640', group: 'dovecot', templatesDir: dir },
    )
    expect(f).toMatchObject({ id: 'file:/etc/a.conf', content: 'x=2\n', owner: 'root', group: 'dovecot', mode: '0640' })
  })
})
