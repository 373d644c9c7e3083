/** The web page at https://DOMAIN/ with the sign-up QR code, rendered at deploy time. */
import type { Config } from '../config/schema.js'
import { loadTemplate, type TemplateLines, templateLines } from '../server/template.js'
import { dcaccountLink, needsDclogin, qrSvg } from './links.js'

/** A rendered fragment as a multi-line template value. */
export function asLines(text: string): TemplateLines {
  return templateLines(...text.split('\n'))
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

export async function signupPage(c: Config, templatesDir?: string): Promise<string> {
  const domain = escapeHtml(c.domain)
  const mode = c.accounts.registration
  let signup: string
  if (mode === 'closed') signup = await loadTemplate('nginx/signup-closed.html', {}, templatesDir)
  else if (mode === 'invite') {
    signup = await loadTemplate('nginx/signup-invite.html', {}, templatesDir)
    // An invite link for a self-signed server opens this page with ?i=TOKEN; its script sends it.
    if (needsDclogin(c)) signup += await loadTemplate('nginx/signup-self-signed.html', { domain }, templatesDir)
  } else if (needsDclogin(c)) signup = await loadTemplate('nginx/signup-self-signed.html', { domain }, templatesDir)
  else {
    const link = dcaccountLink(c.domain)
    signup = await loadTemplate(
      'nginx/signup-open.html',
      { domain, link: escapeHtml(link), qr_svg: asLines(qrSvg(link)) },
      templatesDir,
    )
  }
  const admin = c.mail.admin
    ? `<p>Operator: <a href="mailto:${escapeHtml(c.mail.admin)}">${escapeHtml(c.mail.admin)}</a></p>`
    : ''
  return loadTemplate('nginx/signup-page.html', { domain, signup: asLines(signup), admin }, templatesDir)
}
