// sign-up and mail on Debian 12: the suite is test/e2e/signup.suite.ts (one file per release, so the two run side by side).
import { signupSuite } from './signup.suite.js'

signupSuite('bookworm')
