-- {{managed_by}}
-- Runs once the headers are in: sets aside every DKIM signature whose domain (d=) is not the
-- domain of the From address, so only signatures of the author's own domain can count. Only for
-- mail arriving on port 25 (postfix names that smtpd VERIFYING): opendkim also runs this script
-- once when it loads it, without a message, and a script error there kills opendkim.
if odkim.get_mtasymbol(ctx, "{daemon_name}") ~= "VERIFYING" then
  return nil
end
local from = odkim.get_fromdomain(ctx)
local n = odkim.get_sigcount(ctx)
if from == nil or n == nil then
  return nil
end
for i = 0, n - 1 do
  local sig = odkim.get_sighandle(ctx, i)
  local d = sig and odkim.sig_getdomain(sig)
  if sig and (d == nil or string.lower(d) ~= string.lower(from)) then
    odkim.sig_ignore(sig)
  end
end
return nil
