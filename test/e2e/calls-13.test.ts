/** A real Delta Chat call through the server's TURN on Debian 13 (test/helpers/calls.ts). */
import { describeCalls } from '../helpers/calls.js'

describeCalls('trixie', { index: 121, fenceIndex: 123, externalIp: true })
