/** What `chatmail init` accepts as a server's name: an FQDN, or an IPv4 literal for IP-only servers. */

export type DomainKind = 'fqdn' | 'ipv4'
export type DomainCheck = { ok: true; domain: string; kind: DomainKind } | { ok: false; reason: string }

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/

export function checkDomain(input: string): DomainCheck {
  const domain = input.trim().toLowerCase().replace(/\.$/, '')
  if (domain === '') return { ok: false, reason: 'the domain is empty' }
  const v4 = IPV4.exec(domain)
  if (v4) {
    if (v4.slice(1).some((p) => Number(p) > 255 || (p.length > 1 && p.startsWith('0')))) {
      return { ok: false, reason: `${input} is not a valid IPv4 address` }
    }
    return { ok: true, domain, kind: 'ipv4' }
  }
  if (domain.includes('://') || domain.includes('/') || domain.includes('@')) {
    return { ok: false, reason: `${input} is not a domain name (give the bare name, e.g. chat.example.org)` }
  }
  if (domain.includes(':') && !/^[0-9a-f:.]+$/.test(domain)) {
    return { ok: false, reason: `${input} is not a domain name (give it without a port)` }
  }
  if (domain.includes(':')) {
    return {
      ok: false,
      reason: `${input} is an IPv6 address: Delta Chat cannot parse one in TURN metadata; use a DNS name`,
    }
  }
  if (domain.length > 253) return { ok: false, reason: `${input} is longer than 253 characters` }
  const labels = domain.split('.')
  if (labels.length < 2) {
    return { ok: false, reason: `${input} is not a fully qualified domain name (e.g. chat.example.org)` }
  }
  for (const [i, label] of labels.entries()) {
    // cmdeploy's convention: a leading "_" on the first label marks a self-signed test server.
    const body = i === 0 && label.startsWith('_') ? label.slice(1) : label
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(body)) {
      return { ok: false, reason: `"${label}" in ${input} is not a valid DNS label` }
    }
  }
  if (/^\d+$/.test(labels[labels.length - 1] as string)) {
    return { ok: false, reason: `${input} has a numeric top-level label` }
  }
  return { ok: true, domain, kind: 'fqdn' }
}
