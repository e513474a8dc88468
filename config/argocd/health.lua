-- Argo CD health check for the AgentGate kinds (agentgate.io AgentConnection, MaskingRule,
-- RecordingPolicy). Argo CD sets the global `obj` to the live object and reads the returned
-- table: hs.status (Healthy, Progressing, Degraded) and hs.message. Installed by
-- argocd-cm-patch.yaml; one script serves the three kinds because they share kstatus status.
--
-- The operator writes kstatus conditions (see ControllerRuntime/KStatus.swift):
--   Ready=True                       the object is in effect at its generation  -> Healthy
--   Ready=False, Reconciling=True    waiting for something that may still come  -> Progressing
--   Ready=False, Stalled=True        cannot work until someone changes it       -> Degraded
-- and status.observedGeneration, which lags metadata.generation until the operator has read
-- the latest spec: until then any condition describes an older spec -> Progressing.
-- Written for Lua 5.1 (gopher-lua, what Argo CD embeds) and later versions alike.

local hs = {}

local function condition(conditions, type)
  for _, c in ipairs(conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

-- "Reason: message", or whichever of the two is set.
local function describe(c)
  local reason = c.reason or ""
  local message = c.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  if message ~= "" then
    return message
  end
  return reason
end

local metadata = obj.metadata or {}
local status = obj.status or {}
local conditions = status.conditions or {}

if metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted: the operator is removing what it created"
  return hs
end

local generation = metadata.generation
local observed = status.observedGeneration
if observed == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile this object"
  return hs
end
if generation ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = string.format("Waiting for the operator to reconcile generation %d (status describes generation %d)",
    generation, observed)
  return hs
end

local stalled = condition(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

local reconciling = condition(conditions, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(reconciling)
  return hs
end

local ready = condition(conditions, "Ready")
if ready == nil or ready.status == "Unknown" then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end
-- Ready=False with neither Reconciling nor Stalled: not working, and nothing says it will be.
hs.status = "Degraded"
hs.message = describe(ready)
return hs
