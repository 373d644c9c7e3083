/** A real Delta Chat call through the server's TURN on Debian 12 (test/helpers/calls.ts). */
import { describeCalls } from '../helpers/calls.js'

describeCalls('bookworm', { index: 120, fenceIndex: 122 })
