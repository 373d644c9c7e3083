// Sign-up for a server with a self-signed certificate: POST /new, then show the dclogin: link
// it returns (Delta Chat opens it and logs in, accepting the certificate) and that link's QR code,
// which the server rendered (an SVG shown as an image: nothing from it runs). No other script.
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
    if (body.dclogin_qr_svg) {
      const p = document.createElement('p')
      p.className = 'qr'
      const img = document.createElement('img')
      img.alt = `QR code: scan it with Delta Chat to log in to ${body.email}`
      img.src = `data:image/svg+xml,${encodeURIComponent(body.dclogin_qr_svg)}`
      p.append(img)
      out.append(p)
    }
  } catch (err) {
    out.textContent = `Could not reach the server: ${err}`
  }
})
