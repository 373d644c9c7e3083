/**
 * How postfix routes and guards the server's own addresses (templates/postfix). Pure.
 *
 * A domain name: a virtual mailbox domain; recipients are the doctor account and what
 * chatmail-accounts knows (socketmap `mailbox`), so an unknown recipient is refused at RCPT.
 * An IP-only server: `user@[IP]` is an address literal of one of the host's interfaces (or of
 * `proxy_interfaces` behind NAT), which postfix puts in its local class; that class goes to
 * dovecot over LMTP with the same recipient check. `resolve_numeric_domain` also admits `user@IP`.
 */
import { isIPv4 } from 'node:net'

export const LMTP_TRANSPORT = 'lmtp:unix:private/dovecot-lmtp'

function recipientMaps(socketmap: string, doctor: string): string {
  return `inline:{ {${doctor.toLowerCase()}=ok} }, proxy:socketmap:unix:${socketmap}:mailbox`
}

export function deliveryLines(domain: string, doctor: string, socketmap: string): string {
  const maps = recipientMaps(socketmap, doctor)
  if (isIPv4(domain)) {
    return [
      `# IP-only server: user@[${domain}] (and user@${domain}) are local addresses, delivered to dovecot.`,
      'resolve_numeric_domain = yes',
      `proxy_interfaces = ${domain}`,
      `local_transport = ${LMTP_TRANSPORT}`,
      `local_recipient_maps = ${maps}`,
    ].join('\n')
  }
  return [
    `virtual_mailbox_domains = ${domain}`,
    `virtual_mailbox_maps = ${maps}`,
    `virtual_transport = ${LMTP_TRANSPORT}`,
  ].join('\n')
}

function regexEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}

/**
 * pcre login map lines: the owner of an address of ours is the login of the same name. On an
 * IP-only server both spellings name one account: accounts log in as `user@[IP]` (what
 * chatmail-accounts makes of either), the doctor as configured.
 */
export function loginMapLines(domain: string): string {
  if (isIPv4(domain)) {
    const ip = regexEscape(domain)
    return `/^(.+)@(\\[${ip}\\]|${ip})$/ \${1}@[${domain}], \${1}@${domain}`
  }
  return `/^(.+@${regexEscape(domain.toLowerCase())})$/i \${1}`
}

/**
 * pcre sender access lines for port 25: mail that claims one of our addresses as its sender comes
 * only through submission with a login (465/587), never from outside on port 25.
 */
export function ownSenderLines(domain: string): string {
  const text = 'REJECT 5.7.1 mail from this domain must be sent with a login (ports 465 and 587)'
  if (isIPv4(domain)) {
    const ip = regexEscape(domain)
    return `/@(\\[${ip}\\]|${ip})$/ ${text}`
  }
  return `/@${regexEscape(domain.toLowerCase())}$/i ${text}`
}
