/**
 * Which version of a Debian package a host will run after a deploy, for services whose
 * configuration differs between versions. `apt-get install` upgrades nothing that is installed,
 * so an installed version wins; otherwise the host's release decides (what its apt will install).
 */

/** The dovecot each supported Debian release ships. */
const DOVECOT_BY_RELEASE: Readonly<Record<string, DovecotMajor>> = { '12': '2.3', '13': '2.4' }

export type DovecotMajor = '2.3' | '2.4'

/** `1:2.4.1+dfsg1-6+deb13u7` → [2, 4]; undefined when it is not a Debian version of that shape. */
export function upstreamMajorMinor(debianVersion: string): [number, number] | undefined {
  const m = /^(?:\d+:)?(\d+)\.(\d+)/.exec(debianVersion)
  return m ? [Number(m[1]), Number(m[2])] : undefined
}

/**
 * The dovecot configuration grammar to render: the installed dovecot-core's (a host upgraded in
 * place has 2.4 before its first deploy on 13), else the release's. dovecot-core counts only when
 * fully installed: a half-configured 2.4 (refusing a 2.3 configuration) is a 2.4.
 */
export function dovecotMajor(release: string, installedCore: string | undefined): DovecotMajor {
  const v = installedCore === undefined ? undefined : upstreamMajorMinor(installedCore)
  if (v) return v[0] > 2 || (v[0] === 2 && v[1] >= 4) ? '2.4' : '2.3'
  return DOVECOT_BY_RELEASE[release] ?? '2.4'
}
