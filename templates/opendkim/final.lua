-- {{managed_by}}
-- Runs after verification, for mail arriving on port 25 (postfix names that smtpd VERIFYING; what
-- we sign passes, and opendkim's own trial run of the script when it loads it, without a message,
-- must end here too: a script error there kills opendkim). Arriving mail passes only with at least
-- one signature of the From address's domain whose header signature and body hash both verified;
-- anything else is refused with a reply that says why.
if odkim.get_mtasymbol(ctx, "{daemon_name}") ~= "VERIFYING" then
  return nil
end
local from = odkim.get_fromdomain(ctx)
local n = odkim.get_sigcount(ctx) or 0
-- libopendkim's DKIM_SIGERROR_* codes a sender most likely meets, in words (others by number).
local why = {
  [3] = "signature expired",
  [4] = "signature in the future",
  [22] = "no key in DNS",
  [23] = "key record malformed",
  [24] = "key lookup failed",
  [28] = "signature mismatch",
  [29] = "unauthorized subdomain",
  [30] = "several key records",
}
local reason = "No DKIM signature found"
for i = 0, n - 1 do
  local sig = odkim.get_sighandle(ctx, i)
  local d = sig and odkim.sig_getdomain(sig)
  if d ~= nil and from ~= nil and string.lower(d) == string.lower(from) then
    -- sig_result 0: the header signature verified; sig_bhresult 0: the body hash matched.
    local e = math.floor(odkim.sig_result(sig) or -1)
    local bh = math.floor(odkim.sig_bhresult(sig) or -1)
    if e == 0 and bh == 0 then
      return nil
    end
    local body = "body not checked"
    if bh == 0 then
      body = "body hash matches"
    elseif bh == 1 then
      body = "body hash mismatch"
    end
    reason = "No valid DKIM signature found (d=" .. d .. ": " .. (why[e] or "error") .. " (" .. tostring(e)
      .. "), " .. body .. ")"
  elseif reason == "No DKIM signature found" then
    reason = "No valid DKIM signature found (none of the From domain " .. tostring(from) .. ")"
  end
end
odkim.set_reply(ctx, "554", "5.7.1", reason)
odkim.set_result(ctx, SMFIS_REJECT)
return nil
