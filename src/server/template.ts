import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { controlCharacter } from '../config/values.js'
import { ChatmailError, ExitCode } from '../lib/errors.js'

/** The project's templates/ directory: two levels up from src/deploy/, and from dist/chunks/ where the build puts this code. */
export const TEMPLATES_DIR = fileURLToPath(new URL('../../templates/', import.meta.url))

/** A value of several whole lines: each line is checked like any other value, then joined. */
export class TemplateLines {
  constructor(readonly lines: readonly string[]) {}
}
export const templateLines = (...lines: string[]): TemplateLines => new TemplateLines(lines)

export type TemplateVars = Record<string, string | number | boolean | TemplateLines>

/**
 * The last line of defence against a value that adds a directive to a server config: a value is
 * one line without control characters (the config checks values long before this; a multi-line
 * value has to say so with templateLines()).
 */
function oneLineValue(name: string, key: string, value: TemplateVars[string]): string {
  const parts = value instanceof TemplateLines ? value.lines : [String(value)]
  for (const part of parts) {
    const found = controlCharacter(part)
    if (found) {
      throw new ChatmailError(
        `${name}: refusing the value of {{${key}}}: it contains ${found}; a template value must be one line`,
        ExitCode.failed,
      )
    }
  }
  return parts.join('\n')
}

/**
 * Replaces `{{name}}` (whitespace allowed inside the braces). Every placeholder must have a value
 * and every value must be used, so a typo in a stack or a template fails loudly, not on the host.
 */
export function renderTemplate(text: string, vars: TemplateVars, name = 'template'): string {
  const used = new Set<string>()
  const missing = new Set<string>()
  const out = text.replace(/\{\{\s*([A-Za-z_][\w.]*)\s*\}\}/g, (_, key: string) => {
    if (!(key in vars)) {
      missing.add(key)
      return ''
    }
    used.add(key)
    return oneLineValue(name, key, vars[key] as TemplateVars[string])
  })
  if (missing.size > 0) {
    throw new ChatmailError(`${name}: no value for ${[...missing].map((k) => `{{${k}}}`).join(', ')}`, ExitCode.failed)
  }
  const unused = Object.keys(vars).filter((k) => !used.has(k))
  if (unused.length > 0) {
    throw new ChatmailError(`${name}: values given but not used: ${unused.join(', ')}`, ExitCode.failed)
  }
  return out
}

/** Reads `templates/<relPath>` and renders it. */
export async function loadTemplate(relPath: string, vars: TemplateVars, dir = TEMPLATES_DIR): Promise<string> {
  const text = await readFile(new URL(relPath, `file://${dir.endsWith('/') ? dir : `${dir}/`}`), 'utf8').catch(
    (e: Error) => {
      throw new ChatmailError(`template ${relPath} not found in ${dir}: ${e.message}`, ExitCode.cannotRun)
    },
  )
  return renderTemplate(text, vars, relPath)
}
