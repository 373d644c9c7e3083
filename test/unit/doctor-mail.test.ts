import { describe, expect, test } from 'vitest'
import { addressOnDomain, judgeAutoconfig } from '../../src/doctor/checks/mail.js'
import { pgpMimeMessage } from '../../src/doctor/checks/mail-flow.js'
import { plaintextMessage } from '../../src/doctor/checks/mail-policy.js'
import { parseAutoconfig } from '../../src/protocols/autoconfig.js'

const XML = `<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment with <incomingServer type="pop3"> inside -->
<clientConfig version="1.1">
  <emailProvider id="chat.example.org">
    <domain>chat.example.org</domain>
    <IncomingServer type="IMAP">
      <hostname> chat.example.org </hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </IncomingServer>
    <incomingServer type="imap">
      <hostname>chat.example.org</hostname>
      <port>143</port>
      <socketType>STARTTLS</socketType>
      <username>%EMAILLOCALPART%@%EMAILDOMAIN%</username>
    </incomingServer>
    <incomingServer type="imap"><hostname>incomplete.example.org</hostname><port>993</port></incomingServer>
    <outgoingServer type='smtp'>
      <hostname>chat.example.org</hostname>
      <port>465</port>
      <socketType>ssl</socketType>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
    <outgoingServer type="smtp">
      <hostname>a&amp;b.example.org</hostname>
      <port>58x</port>
      <socketType>none-of-these</socketType>
      <username><![CDATA[%EMAILADDRESS%]]></username>
    </outgoingServer>
  </emailProvider>
</clientConfig>`

describe('autoconfig XML, read as Delta Chat core reads it', () => {
  const servers = parseAutoconfig(XML, 'abc@chat.example.org')

  test('complete servers in order, tags case-insensitive, text trimmed, placeholders filled', () => {
    expect(servers).toEqual([
      {
        direction: 'incoming',
        type: 'imap',
        hostname: 'chat.example.org',
        port: 993,
        socketType: 'ssl',
        username: 'abc@chat.example.org',
      },
      {
        direction: 'incoming',
        type: 'imap',
        hostname: 'chat.example.org',
        port: 143,
        socketType: 'starttls',
        username: 'abc@chat.example.org',
      },
      {
        direction: 'outgoing',
        type: 'smtp',
        hostname: 'chat.example.org',
        port: 465,
        socketType: 'ssl',
        username: 'abc@chat.example.org',
      },
      {
        direction: 'outgoing',
        type: 'smtp',
        hostname: 'a&b.example.org',
        port: 0,
        socketType: 'automatic',
        username: 'abc@chat.example.org',
      },
    ])
  })

  test('verdicts', () => {
    const expectFor = { imapHost: 'chat.example.org', imapPort: 993, user: 'abc@chat.example.org' }
    // The broken second smtp entry (port 58x) is a failure: core would try it.
    expect(judgeAutoconfig(servers, expectFor).status).toBe('fail')
    expect(judgeAutoconfig(servers.slice(0, 3), expectFor)).toEqual({
      status: 'ok',
      detail: 'imap chat.example.org:993 ssl, smtp chat.example.org:465 ssl',
    })
    expect(judgeAutoconfig(servers.slice(0, 2), expectFor).detail).toMatch(/no complete smtp server/)
    expect(judgeAutoconfig(servers.slice(1, 3), expectFor).status).toBe('warn') // only port 143
    const plain = [{ ...servers[0]!, socketType: 'plain' as const }, servers[2]!]
    expect(judgeAutoconfig(plain, expectFor).detail).toMatch(/socketType plain/)
    const other = parseAutoconfig(XML, 'xyz@chat.example.org').slice(0, 3)
    expect(judgeAutoconfig(other, expectFor).detail).toMatch(/username xyz@chat.example.org, not the address/)
    expect(parseAutoconfig('<html>404</html>', 'a@b')).toEqual([])
  })
})

test('addresses /new may hand out', () => {
  expect(addressOnDomain('abc123xyz@chat.example.org', 'chat.example.org')).toBe(true)
  expect(addressOnDomain('abc123xyz@CHAT.example.org', 'chat.example.org')).toBe(true)
  expect(addressOnDomain('abc123xyz@[203.0.113.5]', '203.0.113.5')).toBe(true)
  expect(addressOnDomain('abc123xyz@203.0.113.5', '203.0.113.5')).toBe(true)
  expect(addressOnDomain('abc123xyz@[chat.example.org]', 'chat.example.org')).toBe(false)
  expect(addressOnDomain('abc123xyz@other.example.org', 'chat.example.org')).toBe(false)
  expect(addressOnDomain('@chat.example.org', 'chat.example.org')).toBe(false)
})

test('the round trip message is PGP/MIME that openpgp.js encrypts and decrypts', async () => {
  const openpgp = await import('openpgp')
  const { privateKey, publicKey } = await openpgp.generateKey({
    type: 'ecc',
    userIDs: [{ email: 'me@chat.example.org' }],
    format: 'object',
  })
  const armored = await openpgp.encrypt({
    message: await openpgp.createMessage({ text: 'token-123' }),
    encryptionKeys: publicKey,
  })
  const mime = pgpMimeMessage({
    from: 'me@chat.example.org',
    to: 'me@chat.example.org',
    messageId: 'abc@chat.example.org',
    date: new Date(Date.UTC(2026, 10, 30, 6, 0, 0)),
    armored,
  })
  const cut = mime.indexOf('\r\n\r\n')
  const [head, body] = [mime.slice(0, cut), mime.slice(cut + 4)]
  expect(head).toMatch(/^Date: Mon, 30 Nov 2026 06:00:00 \+0000$/m)
  expect(head).toMatch(/^Message-ID: <abc@chat.example.org>$/m)
  const boundary = /boundary="([^"]+)"/.exec(head)?.[1]
  expect(head).toMatch(/^Content-Type: multipart\/encrypted; protocol="application\/pgp-encrypted"; boundary="/m)
  const parts = body.split(`--${boundary}`)
  expect(parts).toHaveLength(4) // preamble, version part, encrypted part, closing
  expect(parts[1]).toContain('Content-Type: application/pgp-encrypted\r\n')
  expect(parts[1]).toContain('Version: 1')
  expect(parts[3]).toBe('--\r\n')
  expect(mime.split('\r\n').every((l) => l.length <= 998)).toBe(true)
  const block = /-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----/.exec(parts[2]!)![0]
  const { data } = await openpgp.decrypt({
    message: await openpgp.readMessage({ armoredMessage: block.replaceAll('\r\n', '\n') }),
    decryptionKeys: privateKey,
  })
  expect(data).toBe('token-123')
})

test('the plaintext message of mail.rejects-unencrypted is what a client without encryption sends', () => {
  const mime = plaintextMessage({
    from: 'me@[203.0.113.5]',
    to: 'me@[203.0.113.5]',
    messageId: 'xyz@203.0.113.5',
    date: new Date(Date.UTC(2026, 10, 30, 6, 0, 0)),
  })
  const cut = mime.indexOf('\r\n\r\n')
  const [head, body] = [mime.slice(0, cut), mime.slice(cut + 4)]
  expect(head.split('\r\n')).toEqual([
    'From: <me@[203.0.113.5]>',
    'To: <me@[203.0.113.5]>',
    'Subject: chatmail doctor: unencrypted',
    'Date: Mon, 30 Nov 2026 06:00:00 +0000',
    'Message-ID: <xyz@203.0.113.5>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
  ])
  // None of chatmail's cleartext exceptions: no Secure-Join header, no Autocrypt Setup Message, no OpenPGP.
  expect(mime).not.toMatch(/Secure-Join|Autocrypt-Setup-Message|BEGIN PGP|multipart/i)
  expect(body.endsWith('\r\n')).toBe(true)
  expect(mime.split('\r\n').every((l) => l.length <= 998)).toBe(true)
})
