/** Builds a profile's stack in a test, without a host: Debian 12 facts and a stand-in dist/. */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { Config } from '../../src/config/schema.js'
import type { DeploySpec } from '../../src/deploy/resources.js'
import { buildStack, type HostInfo, type StackContext } from '../../src/deploy/service.js'
import { stackFor } from '../../src/deploy/stacks/index.js'

export const BOOKWORM: HostInfo = { release: '12', codename: 'bookworm', arch: 'x86_64', packages: new Map() }

/** A dist/ directory holding a stand-in chatmail-metadata program. */
export function standInDist(): string {
  const dir = mkdtempSync(join(tmpdir(), 'chatmail-dist-'))
  mkdirSync(join(dir, 'remote'))
  writeFileSync(join(dir, 'remote', 'chatmail-metadata.js'), '// program\n')
  writeFileSync(join(dir, 'remote', 'chatmail-accounts.js'), '// accounts program\n')
  writeFileSync(join(dir, 'remote', 'chatmail-filter.js'), '// filter program\n')
  return dir
}

export function testStackContext(config: Config, extra: Partial<StackContext> = {}): StackContext {
  return {
    config,
    host: BOOKWORM,
    distDir: standInDist(),
    irohRelay: {},
    doctorPassword: 'doctor-password',
    templatesDir: resolve('templates'),
    ...extra,
  }
}

export const buildTestStack = (config: Config, extra: Partial<StackContext> = {}): Promise<DeploySpec> =>
  buildStack(stackFor(config.profile), testStackContext(config, extra))
