/** The SSH layer: sessions, known_hosts, sudo and shell quoting, used by deploy and the doctor. */

export * from './config.js'
export * from './identities.js'
export * from './known-hosts.js'
export * from './passphrase.js'
export * from './quote.js'
export * from './resolve.js'
export * from './session.js'
export * from './sudo.js'
export * from './target.js'
