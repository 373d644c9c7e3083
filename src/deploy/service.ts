/**
 * A stack is a set of services. A service module (src/deploy/services/) declares what one part of
 * the server needs: its packages, users, directories, files (rendered from templates/), binaries,
 * one-off commands, systemd units (each with its validation commands and the resources it
 * restarts on, by reference) and the ports it claims. `buildStack` flattens the services of a
 * stack into the engine's `DeploySpec`.
 */
import type { Config } from '../config/schema.js'
import { describeServer, portsOf } from '../server/services.js'
import type { Facts } from './facts.js'
import type {
  BinaryResource,
  CommandResource,
  DeploySpec,
  DirectoryResource,
  FileResource,
  PackageResource,
  PortClaim,
  Resource,
  ServiceResource,
  UserResource,
} from './resources.js'

/** What a service may know about the host, from the facts gathered before the stack is built. */
export interface HostInfo {
  /** Debian's VERSION_ID ('12', '13'), for per-release templates. */
  release: string
  /** 'bookworm', 'trixie'. */
  codename: string
  arch: string
  /** Versions of the packages installed on the host (before this deploy), by package name. */
  packages: ReadonlyMap<string, string>
  /** The host's global addresses (`ip addr show scope global`); unknown when absent. */
  addresses?: readonly string[]
}

export function hostInfo(facts: Facts): HostInfo {
  const packages = new Map<string, string>()
  for (const [name, p] of facts.packages) if (p.installed && p.version) packages.set(name, p.version)
  return {
    release: facts.os.versionId,
    codename: facts.os.codename,
    arch: facts.arch,
    packages,
    addresses: facts.addresses,
  }
}

/** Everything a service is built from. */
export interface StackContext {
  config: Config
  host: HostInfo
  /** The package's templates/ directory. */
  templatesDir: string
  /** The package's dist/ directory (bundled programs that run on the host). */
  distDir: string
  /** The doctor account's password (kept in the local config). */
  doctorPassword: string
  /** Where iroh-relay comes from: a mirror or a local tarball, and a sha256 override. */
  irohRelay: { source?: string; sha256?: string }
}

/** One service's declaration. Every list is optional. */
export interface ServicePart {
  packages?: PackageResource[]
  users?: UserResource[]
  directories?: DirectoryResource[]
  /** Commands (self-signed certificates, ACME, clean-ups); they run when their `unless` fails. */
  commands?: CommandResource[]
  /** Managed files and server data (`dataFile`), and binaries. */
  files?: Array<FileResource | BinaryResource>
  /** systemd units with their validation and restart triggers. */
  units?: ServiceResource[]
  ports?: PortClaim[]
}

export interface ServiceModule {
  /** 'dovecot', 'postfix', … (for messages and docs). */
  name: string
  build(ctx: StackContext): ServicePart | Promise<ServicePart>
}

export interface StackDefinition {
  profile: string
  services: ServiceModule[]
}

const ORDER: Array<keyof Omit<ServicePart, 'ports'>> = [
  'packages',
  'users',
  'directories',
  'commands',
  'files',
  'units',
]

/**
 * Builds every service and flattens them: resources grouped by kind (the order of the plan), a
 * resource two services declare identically (a shared directory, the TLS certificate) once.
 */
export async function buildStack(def: StackDefinition, ctx: StackContext): Promise<DeploySpec> {
  const parts = await Promise.all(def.services.map(async (s) => ({ name: s.name, part: await s.build(ctx) })))
  const byId = new Map<string, { r: Resource; from: string }>()
  const resources: Resource[] = []
  for (const key of ORDER) {
    for (const { name, part } of parts) {
      for (const r of (part[key] ?? []) as Resource[]) {
        const seen = byId.get(r.id)
        if (seen) {
          if (JSON.stringify(seen.r) !== JSON.stringify(r)) {
            throw new Error(`services ${seen.from} and ${name} declare ${r.id} differently`)
          }
          continue
        }
        byId.set(r.id, { r, from: name })
        resources.push(r)
      }
    }
  }
  return { resources, ports: parts.flatMap(({ part }) => part.ports ?? []) }
}

export const tcp = (port: number, owners: string[]): PortClaim => ({ port, proto: 'tcp', owners })
/** The ports the server description (src/server/services.ts) says `unit` listens on, as claims. */
export const portClaims = (config: Config, unit: string): PortClaim[] =>
  portsOf(describeServer(config), unit).map((p) => ({ port: p.port, proto: p.proto, owners: [...p.programs] }))
export const udp = (port: number, owners: string[]): PortClaim => ({ port, proto: 'udp', owners })
