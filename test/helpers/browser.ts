/**
 * A real browser on the sign-up page: Debian's Chromium, driven by playwright-core, run inside a
 * fence (test/helpers/deltachat.ts) so that it reaches the test host and nothing else, with its
 * background networking off. It loads the page, clicks "Create an account" as a person would, and
 * reads what the page's own script shows: the dclogin: link, and the QR code's image, which
 * zbarimg (Debian's zbar-tools) decodes independently of the encoder that drew it.
 */
import { execFile } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { type Browser, chromium } from 'playwright-core'
import type { Fence } from './deltachat.js'

export const CHROMIUM = '/usr/bin/chromium'
const ZBARIMG = '/usr/bin/zbarimg'

/** Why no browser test can run here, or undefined. */
export function browserSkipReason(): string | undefined {
  for (const bin of [CHROMIUM, ZBARIMG]) if (!existsSync(bin)) return `missing ${bin} (run: bash scripts/test-deps.sh)`
  return undefined
}

export interface PageSignup {
  /** The link the page shows (its href). */
  link: string
  /** What the link's text says. */
  text: string
  /** The QR code the page shows, as zbarimg reads it from a screenshot of the image. */
  qr: string
  /** Console errors and uncaught exceptions of the page. */
  errors: string[]
  /** Every URL the browser asked for. */
  requests: string[]
}

/** Chromium started by playwright inside the fence; `close` stops it and removes its files. */
export interface FencedBrowser {
  browser: Browser
  /** A private directory for the test's files (removed on close). */
  dir: string
  close(): Promise<void>
}

/**
 * Starts Debian's Chromium inside the fence, with its background networking off (no updates, no
 * sync, no default apps) so it asks for nothing but what the page asks for; `args` are added.
 */
export async function launchInFence(fence: Fence, args: string[] = []): Promise<FencedBrowser> {
  const dir = mkdtempSync(join(tmpdir(), 'chatmail-browser-'))
  // playwright starts the browser itself and talks to it over inherited pipes: a wrapper moves it
  // into the fence's network namespace first (ip netns exec keeps the descriptors), and notes
  // which namespace the browser's process is in, checked below.
  const wrapper = join(dir, 'chromium-in-fence')
  const where = join(dir, 'netns')
  writeFileSync(
    wrapper,
    `#!/bin/sh\nexec ip netns exec ${fence.netns} /bin/sh -c 'ip netns identify $$ >${where} && exec ${CHROMIUM} "$@"' chromium "$@"\n`,
  )
  chmodSync(wrapper, 0o700)
  const close = async (browser?: Browser) => {
    await browser?.close().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
  let browser: Browser | undefined
  try {
    browser = await chromium.launch({
      executablePath: wrapper,
      // As root, Chromium's sandbox cannot start; nothing but the test's own pages run in it.
      args: [
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-default-apps',
        '--disable-sync',
        '--no-first-run',
        ...args,
      ],
      timeout: 60_000,
    })
    const netns = readFileSync(where, 'utf8').trim()
    if (netns !== fence.netns) throw new Error(`the browser runs in network namespace "${netns}", not the fence's`)
    const b = browser
    return { browser: b, dir, close: () => close(b) }
  } catch (err) {
    await close(browser)
    throw err
  }
}

/**
 * Opens `url` in Chromium inside the fence, clicks the page's "Create an account" button and
 * returns what the page then shows. The certificate is not checked (a self-signed server's).
 */
export async function signUpInBrowser(fence: Fence, url: string): Promise<PageSignup> {
  const { browser, dir, close } = await launchInFence(fence)
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true })
    const page = await context.newPage()
    const errors: string[] = []
    const requests: string[] = []
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text())
    })
    page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`))
    page.on('request', (r) => requests.push(r.url()))
    await page.goto(url, { timeout: 30_000 })
    await page.click('#new')
    const link = page.locator('#result a.button')
    await link.waitFor({ timeout: 30_000 })
    const png = join(dir, 'qr.png')
    await page.locator('#result p.qr img').screenshot({ path: png, timeout: 30_000 })
    const { stdout } = await promisify(execFile)(ZBARIMG, ['--raw', '-q', png], { timeout: 30_000 })
    return {
      link: (await link.getAttribute('href')) ?? '',
      text: (await link.textContent()) ?? '',
      qr: stdout.trim(),
      errors,
      requests,
    }
  } finally {
    await close()
  }
}
