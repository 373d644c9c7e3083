/**
 * Help text written as prose in the source, wrapped by oclif on the user's terminal. Within a
 * paragraph (blank lines separate paragraphs) the source's line breaks are joined with a space,
 * so oclif's wrapping is the only one: a break written in the source would otherwise survive
 * and cut a sentence in the middle of a terminal line. A line that starts with a space is a list
 * item (e.g. "  0  nothing failed") and keeps its own line.
 */
export function prose(strings: TemplateStringsArray, ...values: unknown[]): string {
  const text = strings.reduce((all, part, i) => all + part + (i < values.length ? String(values[i]) : ''), '')
  return text
    .split(/\n{2,}/)
    .map((paragraph) =>
      paragraph
        .split('\n')
        .reduce<string[]>((lines, line) => {
          const last = lines[lines.length - 1]
          const continues = last !== undefined && !line.startsWith(' ') && !last.startsWith(' ')
          if (continues) lines[lines.length - 1] = `${last} ${line}`
          else lines.push(line)
          return lines
        }, [])
        .join('\n'),
    )
    .join('\n\n')
}
