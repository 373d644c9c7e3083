/**
 * The records `chatmail dns` lists for a server, in buildZone's order: the address records (AAAA
 * only for a server with IPv6), then mail, MTA-STS, TLS reporting, SRV and CAA. Tests compare
 * what the zone and `dns --check` list with this one list.
 */
export function zoneRecordIds(o: { ipv6: boolean }): string[] {
  return [
    'a',
    ...(o.ipv6 ? ['aaaa'] : []),
    'mx',
    'spf',
    'dkim',
    'dmarc',
    'mta-sts',
    'mta-sts.name',
    'tls-rpt',
    'srv.imaps',
    'srv.imap',
    'srv.submissions',
    'srv.submission',
    'caa',
  ]
}
