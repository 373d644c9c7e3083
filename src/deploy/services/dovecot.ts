/**
 * dovecot: IMAP (with METADATA through chatmail-metadata), LMTP delivery from postfix, SASL for
 * postfix. Accounts: the doctor's in its own managed file; the server's accounts in
 * /etc/dovecot/users, server data that a deploy creates empty once and never rewrites.
 *
 * Debian 12 ships dovecot 2.3, Debian 13 dovecot 2.4, whose configuration grammar is new: the
 * same server is rendered from templates/dovecot/dovecot.conf (2.3) or templates/dovecot/2.4/,
 * for the dovecot the host will run (src/deploy/versions.ts).
 */

import { ACCOUNTS } from '../../signup/remote.js'
import { shellQuote as q } from '../../ssh/quote.js'
import { command, dataFile, directory, file, pkg, service, user } from '../resources.js'
import { type ServiceModule, tcp } from '../service.js'
import { dovecotMajor } from '../versions.js'
import { baseVars, doctorAddress, MANAGED_BY, PATHS, render, ssha512 } from './common.js'
import { certificateChanges } from './tls.js'

export const DOVECOT_USERS = '/etc/dovecot/users'
export const DOCTOR_PASSDB = '/etc/dovecot/doctor.passwd'

export const dovecot: ServiceModule = {
  name: 'dovecot',
  async build(ctx) {
    const c = ctx.config
    const doctorUser = doctorAddress(c)
    const passdb = { owner: 'root', group: 'dovecot', mode: '0640' }
    const doctor = file(
      DOCTOR_PASSDB,
      `${doctorUser}:${ssha512(ctx.doctorPassword, doctorUser, c.turn.secret)}::::::\n`,
      {
        ...passdb,
        secret: true,
      },
    )
    const users = dataFile(DOVECOT_USERS, '', passdb)
    const version = dovecotMajor(ctx.host.release, ctx.host.packages.get('dovecot-core'))
    const template = version === '2.4' ? 'dovecot/2.4/dovecot.conf' : 'dovecot/dovecot.conf'
    // chatmail-accounts (dict passdb/userdb), XCHATMAIL and the admin contact are in the 2.3
    // template only so far: the 2.4 one (Debian 13) still has the doctor's and the users file.
    const accountsVars: Record<string, string> =
      version === '2.4'
        ? {}
        : {
            accounts_dict: ACCOUNTS.dovecotDict,
            server_admin_line: c.mail.admin
              ? `mail_server_admin = mailto:${c.mail.admin}`
              : '# mail_server_admin: mail.admin is not set',
            server_comment: c.mail.comment,
          }
    const conf = await render(ctx, '/etc/dovecot/dovecot.conf', template, {
      ...baseVars(c),
      imap_port: c.imap.port,
      metadata_socket: PATHS.metadataSocket,
      doctor_passdb: DOCTOR_PASSDB,
      users_passdb: DOVECOT_USERS,
      ...accountsVars,
    })
    const accountsDict = await render(ctx, ACCOUNTS.dovecotDict, 'dovecot/accounts-dict.conf.ext', {
      managed_by: MANAGED_BY,
      dict_socket: ACCOUNTS.dictSocket,
    })
    // Deploys before the doctor had its own file kept its account in /etc/dovecot/users: take it out
    // there, so an old password stops working when the doctor's changes.
    const u = q(doctorUser)
    const moveDoctor = command(
      'dovecot-doctor-account-moved',
      `remove the doctor account from ${DOVECOT_USERS} (it has its own file, ${DOCTOR_PASSDB})`,
      `[ ! -e ${DOVECOT_USERS} ] || awk -F: -v u=${u} '$1 == u { found = 1 } END { exit found }' ${DOVECOT_USERS}`,
      `awk -F: -v u=${u} '$1 != u' ${DOVECOT_USERS} >${DOVECOT_USERS}.new && chown --reference=${DOVECOT_USERS} ${DOVECOT_USERS}.new && chmod --reference=${DOVECOT_USERS} ${DOVECOT_USERS}.new && mv -f ${DOVECOT_USERS}.new ${DOVECOT_USERS}`,
    )
    return {
      packages: [pkg('dovecot-imapd'), pkg('dovecot-lmtpd')],
      users: [user('vmail', { home: '/home/vmail' })],
      directories: [directory('/home/vmail/mail', { owner: 'vmail', mode: '0700' })],
      commands: [moveDoctor],
      files: [doctor, users, conf, accountsDict],
      units: [
        service('dovecot.service', {
          restartOn: [conf, accountsDict, ...certificateChanges(c)],
          reloadOn: [doctor],
          // -x reads the files the configuration names (the certificate and key): -n alone does not.
          validate: ['doveconf -x -n >/dev/null'],
        }),
      ],
      ports: [tcp(143, ['dovecot', 'imap-login']), tcp(c.imap.port, ['dovecot', 'imap-login'])],
    }
  },
}
