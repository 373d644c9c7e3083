// sign-up and mail on Debian 13: the suite is test/e2e/signup.suite.ts (one file per release, so the two run side by side).
import { signupSuite } from './signup.suite.js'

signupSuite('trixie')
