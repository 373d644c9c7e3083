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
local reason = "No DKIM signature found"
for i = 0, n - 1 do
  local sig = odkim.get_sighandle(ctx, i)
  local d = sig and odkim.sig_getdomain(sig)
  if d ~= nil and from ~= nil and string.lower(d) == string.lower(from) then
    -- sig_result 0: the header signature verified; sig_bhresult 0: the body hash matched.
    if odkim.sig_result(sig) == 0 and odkim.sig_bhresult(sig) == 0 then
      return nil
    end
    reason = "No valid DKIM signature found (d=" .. d .. ", error " .. tostring(odkim.sig_result(sig))
      .. ", body " .. tostring(odkim.sig_bhresult(sig)) .. ")"
  elseif reason == "No DKIM signature found" then
    reason = "No valid DKIM signature found (none of the From domain " .. tostring(from) .. ")"
  end
end
odkim.set_reply(ctx, "554", "5.7.1", reason)
odkim.set_result(ctx, SMFIS_REJECT)
return nil
