/**
 * Names no public nameserver answers for (RFC 6761 special-use and RFC 2606 example names): the
 * check then needs --nameserver, and the doctor skips the dns group instead of asking the world.
 */
export function specialUseName(domain: string): boolean {
  const d = domain.toLowerCase().replace(/\.$/, '')
  return /(^|\.)(localhost|test|invalid|example|local|home\.arpa|example\.(org|com|net))$/.test(d)
}
