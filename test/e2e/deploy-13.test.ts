// deploy host on Debian 13: the suite is test/e2e/deploy.suite.ts (one file per release, so the two run side by side).
import { deploySuite } from './deploy.suite.js'

deploySuite('trixie')
