// Sign-up for a server with a self-signed certificate: POST /new, then show the dclogin: link
// it returns (Delta Chat opens it and logs in, accepting the certificate). No other script.
'use strict'
document.getElementById('new').addEventListener('click', async () => {
  const out = document.getElementById('result')
  out.textContent = 'Creating an account…'
  try {
    const invite = new URLSearchParams(location.search).get('i')
    const res = await fetch(invite ? `/new?i=${encodeURIComponent(invite)}` : '/new', { method: 'POST' })
    const body = await res.json()
    if (!res.ok) {
      out.textContent = body.reason || `The server refused (${res.status}).`
      return
    }
    out.textContent = ''
    const a = document.createElement('a')
    a.href = body.dclogin_url
    a.textContent = `Log in to ${body.email} with Delta Chat`
    a.className = 'button'
    out.append(a)
  } catch (err) {
    out.textContent = `Could not reach the server: ${err}`
  }
})
