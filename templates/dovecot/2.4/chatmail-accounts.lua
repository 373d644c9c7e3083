-- {{managed_by}}
-- dovecot 2.4 passdb and userdb "lua": chatmail-accounts, where a first login creates the account.
-- Dovecot 2.4 has no dict passdb/userdb any more (2.3 uses one, accounts-dict.conf.ext); this
-- script asks chatmail-accounts the same two questions over the same socket, in the dict protocol
-- (a hello, then one lookup), so the service answers both releases alike:
--   shared/passdb/<client IP>"<user>"<password>"<service>  ->  {"password": "{PBKDF2}..."} or a
--     refusal (nologin with the reason for imap; none for smtp, whose asker, postfix, ignores nologin).
--     2.4 calls the service req.protocol (2.3: req.service); unset, the service reads as "" (refused plainly).
--   shared/userdb/<user>                         ->  {"home": "..."}
-- In each key field a backslash goes before " ' and \ (as dovecot 2.3's %E does).
-- Runs in dovecot's auth-worker processes (lua passdbs and userdbs use workers by default), one
-- short connection per lookup.
local unix = require("socket.unix")
local cjson = require("cjson.safe")

local SOCKET = "{{dict_socket}}"
local TIMEOUT = 10

local function escape(text)
  return (tostring(text or ""):gsub("[\\\"']", "\\%0"))
end

-- The service's answer for a key: a table of fields, false when there is no such entry, or nil
-- and an error.
local function lookup(key, user)
  local c = unix.stream and unix.stream() or unix()
  if not c then return nil, "cannot create a unix socket" end
  c:settimeout(TIMEOUT)
  local ok, err = c:connect(SOCKET)
  if not ok then
    c:close()
    return nil, "chatmail-accounts: " .. tostring(err)
  end
  local line = "H4\t0\t0\t" .. dovecot.tabescape(user) .. "\taccounts\n" ..
    "L" .. dovecot.tabescape(key) .. "\t" .. dovecot.tabescape(user) .. "\n"
  ok, err = c:send(line)
  if not ok then
    c:close()
    return nil, "chatmail-accounts: " .. tostring(err)
  end
  local reply
  reply, err = c:receive("*l")
  c:close()
  if not reply then return nil, "chatmail-accounts: " .. tostring(err) end
  local kind, value = reply:sub(1, 1), dovecot.tabunescape(reply:sub(2))
  if kind == "N" then return false end
  if kind ~= "O" then return nil, "chatmail-accounts: " .. value end
  local fields = cjson.decode(value)
  if type(fields) ~= "table" then return nil, "chatmail-accounts: not a JSON object" end
  return fields
end

function auth_passdb_lookup(req)
  local key = "shared/passdb/" .. escape(req.remote_ip) .. "\"" .. escape(req.user) .. "\"" ..
    escape(req.password) .. "\"" .. escape(req.protocol or req.service)
  local fields, err = lookup(key, req.user)
  if fields == nil then return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, err end
  if not fields then return dovecot.auth.PASSDB_RESULT_USER_UNKNOWN, "no such account" end
  return dovecot.auth.PASSDB_RESULT_OK, fields
end

function auth_userdb_lookup(req)
  local fields, err = lookup("shared/userdb/" .. escape(req.user), req.user)
  if fields == nil then return dovecot.auth.USERDB_RESULT_INTERNAL_FAILURE, err end
  if not fields then return dovecot.auth.USERDB_RESULT_USER_UNKNOWN, "no such account" end
  return dovecot.auth.USERDB_RESULT_OK, fields
end

function script_init()
  return 0
end

function script_deinit()
end
