/**
 * The CLI's entry: oclif's execute, and nothing of any command. Each command is its own file in
 * dist/commands/ (scripts/build.mjs makes one entry per file of src/commands/), found through
 * oclif.manifest.json, so a run loads only the code of the command it runs (oclif's "pattern"
 * discovery with a manifest: no scan of the tree at start).
 */
export { execute } from '@oclif/core/execute'
