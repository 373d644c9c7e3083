/** Pieces the services share (the paths they install to are in src/server/paths.ts): template rendering, the pinned iroh-relay, the doctor account. */
import { createHash, createHmac } from 'node:crypto'
import { access, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Config } from '../../config/schema.js'
import { cannotRun } from '../../lib/errors.js'
import { addressDomain } from '../../protocols/address.js'
import { PATHS } from '../../server/paths.js'
import type { TemplateVars } from '../../server/template.js'
import { shellQuote as q } from '../../ssh/quote.js'
import type { BinaryResource, CommandResource, FileResource } from '../resources.js'
import { command, file, templateFile } from '../resources.js'
import type { StackContext } from '../service.js'

export const MANAGED_BY = 'Managed by `chatmail deploy host`: local changes are overwritten on the next deploy.'

/**
 * The template for this host's Debian release: `templates/<dir>/debian-<release>/<file>` when it
 * exists (e.g. `dovecot/debian-13/dovecot.conf` for dovecot 2.4), else `templates/<dir>/<file>`.
 */
export async function releaseTemplate(ctx: StackContext, template: string): Promise<string> {
  const slash = template.lastIndexOf('/')
  const specific = `${template.slice(0, slash + 1)}debian-${ctx.host.release}/${template.slice(slash + 1)}`
  const exists = await access(join(ctx.templatesDir, specific)).then(
    () => true,
    () => false,
  )
  return exists ? specific : template
}

/** A managed file rendered from the host release's variant of `templates/<template>`. */
export async function render(
  ctx: StackContext,
  path: string,
  template: string,
  vars: TemplateVars,
  own: Parameters<typeof templateFile>[3] = {},
): Promise<FileResource> {
  return templateFile(path, await releaseTemplate(ctx, template), vars, { ...own, templatesDir: ctx.templatesDir })
}

/** The values most templates use: who manages the file, the domain, the TLS certificate in use. */
export function baseVars(c: Config) {
  return {
    managed_by: MANAGED_BY,
    domain: c.domain,
    tls_cert: c.tls.mode === 'manual' ? (c.tls.cert as string) : PATHS.tlsCert,
    tls_key: c.tls.mode === 'manual' ? (c.tls.key as string) : PATHS.tlsKey,
  }
}

/** iroh-relay v0.35.0, the release Delta Chat's iroh speaks; sha256 of the extracted binary. */
export const IROH_RELAY_VERSION = 'v0.35.0'
export const IROH_RELAY_SHA256 = {
  x86_64: '45c81199dbd70f8c4c30fef7f3b9727ca6e3cea8f2831333eeaf8aa71bf0fac1',
  aarch64: 'f8ef27631fac213b3ef668d02acd5b3e215292746a3fc71d90c63115446008b1',
} as const
const RELEASES = `https://github.com/n0-computer/iroh/releases/download/${IROH_RELAY_VERSION}/`

export interface IrohRelaySource {
  /** A URL prefix (a mirror of the release directory) or a local .tar.gz file. */
  source?: string
  /** Override of the pinned sha256 (a local build or a test stand-in); applies to every arch. */
  sha256?: string
}

export function irohRelayVariants(src: IrohRelaySource): BinaryResource['variants'] {
  const variants: BinaryResource['variants'] = {}
  for (const arch of ['x86_64', 'aarch64'] as const) {
    const name = `iroh-relay-${IROH_RELAY_VERSION}-${arch}-unknown-linux-musl.tar.gz`
    const s = src.source ?? RELEASES
    const source = /^https?:\/\//.test(s) ? { url: s.endsWith('/') ? `${s}${name}` : s } : { file: s }
    variants[arch] = { sha256: src.sha256 ?? IROH_RELAY_SHA256[arch], source, tarMember: '*iroh-relay' }
  }
  return variants
}

/** The address the doctor logs in with: doctor@DOMAIN, on an IP-only server doctor@[IP] (as accounts are). */
export function doctorAddress(config: Config): string {
  return config.doctor.user ?? `doctor@${addressDomain(config.domain)}`
}

/**
 * Dovecot's {SSHA512} scheme: base64(SHA512(password + salt) + salt). The salt is derived from
 * the server's secret and the user, so the same password renders the same file: a second deploy
 * changes nothing.
 */
export function ssha512(password: string, user: string, secret: string): string {
  const salt = createHmac('sha256', secret).update(`chatmail doctor salt:${user}`).digest().subarray(0, 16)
  const digest = createHash('sha512').update(password).update(salt).digest()
  return `{SSHA512}${Buffer.concat([digest, salt]).toString('base64')}`
}

/** One of our bundled host programs (dist/remote/NAME.js) as the file that installs it at `path`. */
export async function remoteProgram(ctx: StackContext, name: string, path: string): Promise<FileResource> {
  const local = join(ctx.distDir, 'remote', `${name}.js`)
  const program = await readFile(local, 'utf8').catch(() => {
    throw cannotRun(`${local} is missing`, 'run `npm run build` first')
  })
  return file(path, program, { mode: '0644' })
}

/**
 * Files an earlier deploy wrote that the stack renders no more (the other Debian release's variant,
 * after an upgrade in place): removed at the end of a deploy, once the services run without them,
 * and only while they still carry our MANAGED_BY line, so that an operator's own file there stays.
 */
export function obsoleteManagedFiles(name: string, why: string, paths: string[]): CommandResource {
  // A pattern for the line without its backquotes (shellcheck reads those as a command in quotes).
  const marker = q(MANAGED_BY.replace(/[.[\]*^$\\]/g, '\\$&').replaceAll('`', '.'))
  const ours = (p: string) => `grep -qs -- ${marker} ${q(p)}`
  return command(
    name,
    `remove ${paths.join(', ')} (${why})`,
    paths.map((p) => `! ${ours(p)}`).join(' && '),
    paths.map((p) => `if ${ours(p)}; then rm -f -- ${q(p)}; fi`).join('; '),
    'after-services',
  )
}
