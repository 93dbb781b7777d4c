-- Argo CD health check for cams.chatapp.io/ChatGroup (cams-operator).
--
-- Every condition is read before a verdict is made, so a terminal failure (Stalled=True) is never
-- hidden behind an older Ready=True. Conditions written for an older generation are ignored.
--   the annotation cams.chatapp.io/paused is "true"                   -> Suspended
--     (also while the object is being deleted: a paused object keeps its finalizer)
--   being deleted: metadata.deletionTimestamp set, or
--     Reconciling=True with reason Deleting                           -> Progressing
--     (the group is being deleted; a failed deletion is retried, so its reason and message
--     are shown, but it is not Degraded)
--   generation not observed yet, or no current Ready condition        -> Progressing
--     (with the Reconciling condition's message once the operator started on it)
--   Ready=False, reason Paused                                        -> Suspended
--   Stalled=True (a terminal failure, a creation that found no group,
--     several groups, or a conflicting ChatGroup)                     -> Degraded
--   Ready=False, reason ChangesPending (Plan mode)                    -> Suspended
--   Ready=False, reason Drifted (driftPolicy Report)                  -> Degraded
--   Ready=False, any other reason (a group being created, a transitional
--     group, retrying a recoverable failure)                          -> Progressing
--   Ready=True, Synced=False (the last reconcile is being retried)    -> Progressing
--   Ready=True otherwise                                              -> Healthy
-- Lua 5.1, no libraries beyond the base functions.

local hs = {}

local function describe(condition)
  local text = condition.reason or condition.type
  if condition.message ~= nil and condition.message ~= "" then
    text = text .. ": " .. condition.message
  end
  return text
end

local generation = nil
local paused = false
local deleting = false
if obj.metadata ~= nil then
  generation = obj.metadata.generation
  if obj.metadata.deletionTimestamp ~= nil then
    deleting = true
  end
  if obj.metadata.annotations ~= nil and obj.metadata.annotations["cams.chatapp.io/paused"] == "true" then
    paused = true
  end
end

local status = obj.status
local observed = nil
local ready = nil
local synced = nil
local stalled = nil
local reconciling = nil
if status ~= nil then
  observed = status.observedGeneration
  if status.conditions ~= nil then
    for _, condition in ipairs(status.conditions) do
      -- A condition written for an older generation says nothing about this one.
      local current = generation == nil or condition.observedGeneration == nil
        or condition.observedGeneration >= generation
      if current and condition.type == "Ready" then
        ready = condition
      elseif current and condition.type == "Synced" then
        synced = condition
      elseif current and condition.type == "Stalled" then
        stalled = condition
      elseif current and condition.type == "Reconciling" then
        reconciling = condition
      end
    end
  end
end

-- The pause annotation stops all work, so the operator may not observe new generations.
if paused then
  hs.status = "Suspended"
  if ready ~= nil and ready.reason == "Paused" then
    hs.message = describe(ready)
  else
    hs.message = "Paused by the annotation cams.chatapp.io/paused"
  end
  return hs
end

-- Deleting bumps the generation, so this comes before the generation check. A failure while
-- deleting is retried (the object keeps its finalizer until the group is gone, or until
-- deletionPolicy is Orphan), so it is shown but not Degraded.
if reconciling ~= nil and reconciling.status == "True" and reconciling.reason == "Deleting" then
  deleting = true
end
if deleting then
  hs.status = "Progressing"
  if stalled ~= nil and stalled.status == "True" then
    hs.message = describe(stalled)
  elseif synced ~= nil and synced.status == "False" then
    hs.message = describe(synced)
  elseif reconciling ~= nil and reconciling.status == "True" then
    hs.message = describe(reconciling)
  else
    hs.message = "Pending deletion"
  end
  return hs
end

if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for cams-operator to reconcile generation " .. tostring(generation)
  return hs
end

if ready ~= nil and ready.status ~= "True" and ready.reason == "Paused" then
  hs.status = "Suspended"
  hs.message = describe(ready)
  return hs
end

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

if ready == nil then
  hs.status = "Progressing"
  if reconciling ~= nil and reconciling.status == "True" then
    hs.message = describe(reconciling)
  else
    hs.message = "Waiting for cams-operator to report the Ready condition"
  end
  return hs
end

if ready.status ~= "True" then
  if ready.reason == "ChangesPending" then
    hs.status = "Suspended"
  elseif ready.reason == "Drifted" then
    hs.status = "Degraded"
  else
    hs.status = "Progressing"
  end
  hs.message = describe(ready)
  return hs
end

if synced ~= nil and synced.status == "False" then
  hs.status = "Progressing"
  hs.message = describe(synced)
  return hs
end

hs.status = "Healthy"
hs.message = describe(ready)
return hs
