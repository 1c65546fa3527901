"""Conformance suite: the published Python Graph SDKs against a running enrollgraph.

msgraph-beta-sdk (beta) and msgraph-sdk (v1.0), unmodified, authenticated with azure-identity's
ClientSecretCredential (async for beta, sync for v1.0) against enrollgraph's own token endpoint. Only the base URL changes
(`adapter.base_url`, shared reference clients.md §2). Run by crates/cli/tests/clients_python.rs
against `enrollgraph serve --tls --page-size 3`, with:
  AUTHORITY      https://localhost:PORT (the server's origin: token endpoint and Graph); empty:
                 the clients' defaults, through `serve --proxy` (HTTPS_PROXY and the CA variables)
  TENANT, CLIENT_ID, CLIENT_SECRET   an app with DeviceManagementServiceConfig.ReadWrite.All
                 and Group.ReadWrite.All (the development app has both)
  PAGE_SIZE      the server's --page-size (the paging checks need several pages)
  SSL_CERT_FILE, REQUESTS_CA_BUNDLE  the server's CA
By hand:  AUTHORITY=https://localhost:5080 TENANT=... CLIENT_ID=... CLIENT_SECRET=... PAGE_SIZE=100 \
          SSL_CERT_FILE=enrollgraph-data/tls/ca.pem .venv/bin/python tests/clients/sdk_suite.py

Each check prints "ok: ..." or "FAIL: ..."; the script ends with "all checks passed" or exits 1.
"""

import asyncio
import os
import sys
import traceback

from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph_core.tasks.page_iterator import PageIterator

from checks import check, env, eq, failures, finish  # noqa: E402,F401

SCOPES = ["https://graph.microsoft.com/.default"]
# Empty: every client keeps its defaults (https://graph.microsoft.com, the public authority
# with instance discovery) and reaches enrollgraph through `serve --proxy` by HTTPS_PROXY and
# the CA variables alone (issue 14).
AUTHORITY = os.environ.get("AUTHORITY", "").rstrip("/")


def authority_options():
    return {"authority": AUTHORITY, "disable_instance_discovery": True} if AUTHORITY else {}


def credential():
    return ClientSecretCredential(env("TENANT"), env("CLIENT_ID"), env("CLIENT_SECRET"), **authority_options())


def beta_client(cred):
    from msgraph_beta import GraphRequestAdapter, GraphServiceClient

    adapter = GraphRequestAdapter(AzureIdentityAuthenticationProvider(cred, scopes=SCOPES))
    if AUTHORITY:
        adapter.base_url = AUTHORITY + "/beta"
    return GraphServiceClient(request_adapter=adapter)


def v1_client(cred):
    from msgraph import GraphRequestAdapter, GraphServiceClient

    adapter = GraphRequestAdapter(AzureIdentityAuthenticationProvider(cred, scopes=SCOPES))
    if AUTHORITY:
        adapter.base_url = AUTHORITY + "/v1.0"
    return GraphServiceClient(request_adapter=adapter)


async def expect_odata_error(coro, status, code, what):
    """The call must raise the SDK's ODataError with Graph's status and error code."""
    from kiota_abstractions.api_error import APIError

    try:
        await coro
    except APIError as e:  # ODataError derives from APIError
        name = type(e).__name__
        got_code = getattr(getattr(e, "error", None), "code", None)
        check(
            name == "ODataError" and e.response_status_code == status and got_code == code,
            f"{what}: {name} {e.response_status_code} {got_code} (want ODataError {status} {code})",
        )
        return e
    check(False, f"{what}: no error raised (want ODataError {status} {code})")
    return None


async def iterate_all(client, page):
    """Every item of a collection via the SDK's PageIterator; also the number of pages."""
    items = []
    pages = [1]
    it = PageIterator(page, client.request_adapter)
    orig_next = it.next

    async def counting_next():
        r = await orig_next()
        if r is not None:
            pages[0] += 1
        return r

    it.next = counting_next
    await it.iterate(lambda item: items.append(item) or True)
    return items, pages[0]


# --------------------------------------------------------------------------------------
async def groups_and_filters(beta):
    """groups (top-level entity set) and deviceManagement/assignmentFilters, through the SDK."""
    from msgraph_beta.generated.groups.groups_request_builder import GroupsRequestBuilder
    from msgraph_beta.generated.models.assignment_filter_management_type import AssignmentFilterManagementType
    from msgraph_beta.generated.models.device_and_app_management_assignment_filter import (
        DeviceAndAppManagementAssignmentFilter,
    )
    from msgraph_beta.generated.models.device_platform_type import DevicePlatformType
    from msgraph_beta.generated.models.group import Group

    g = await beta.groups.post(Group(
        display_name="SDK Kiosks", mail_enabled=False, mail_nickname="sdkkiosks", security_enabled=True,
        group_types=["DynamicMembership"], membership_rule='(device.deviceOSType -eq "Windows")',
    ))
    check(bool(g.id), f"POST /groups created {g.id}")
    eq(g.group_types, ["DynamicMembership"], "the created group's groupTypes")
    other = await beta.groups.post(Group(display_name="SDK Other", mail_enabled=False,
                                         mail_nickname="sdkother", security_enabled=True))
    qp = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
        filter="displayName eq 'SDK Kiosks'", select=["id", "displayName", "groupTypes", "membershipRule"])
    found = await beta.groups.get(RequestConfiguration(query_parameters=qp))
    eq([x.id for x in found.value], [g.id], "GET /groups?$filter=displayName eq 'SDK Kiosks'")
    eq(found.value[0].membership_rule, '(device.deviceOSType -eq "Windows")', "$select kept membershipRule")
    eq(found.value[0].mail_nickname, None, "$select left mailNickname out")
    got = await beta.groups.by_group_id(other.id).get()
    eq(got.display_name, "SDK Other", "GET /groups/{id}")
    await beta.groups.by_group_id(other.id).patch(Group(description="patched"))
    eq((await beta.groups.by_group_id(other.id).get()).description, "patched", "PATCH /groups/{id}")
    await beta.groups.by_group_id(other.id).delete()
    await expect_odata_error(beta.groups.by_group_id(other.id).get(), 404, "ResourceNotFound",
                             "GET a deleted group")

    f = await beta.device_management.assignment_filters.post(DeviceAndAppManagementAssignmentFilter(
        display_name="SDK Windows only", platform=DevicePlatformType.Windows10AndLater,
        rule='(device.osVersion -startsWith "10.0")',
        assignment_filter_management_type=AssignmentFilterManagementType.Devices,
    ))
    check(bool(f.id), f"POST deviceManagement/assignmentFilters created {f.id}")
    eq(f.platform, DevicePlatformType.Windows10AndLater, "the filter's platform")
    got = await beta.device_management.assignment_filters.by_device_and_app_management_assignment_filter_id(f.id).get()
    eq(got.rule, '(device.osVersion -startsWith "10.0")', "GET assignmentFilters/{id}")
    await beta.device_management.assignment_filters.by_device_and_app_management_assignment_filter_id(f.id).patch(
        DeviceAndAppManagementAssignmentFilter(description="patched"))
    eq((await beta.device_management.assignment_filters.by_device_and_app_management_assignment_filter_id(f.id).get()).description,
       "patched", "PATCH assignmentFilters/{id}")
    listed = await beta.device_management.assignment_filters.get()
    eq([x.id for x in listed.value], [f.id], "GET assignmentFilters")
    return g.id, f.id


def all_targets(group_id, filter_id):
    """Every target type x every filter type (none, include, exclude)."""
    from msgraph_beta.generated.models.all_devices_assignment_target import AllDevicesAssignmentTarget
    from msgraph_beta.generated.models.all_licensed_users_assignment_target import AllLicensedUsersAssignmentTarget
    from msgraph_beta.generated.models.configuration_manager_collection_assignment_target import (
        ConfigurationManagerCollectionAssignmentTarget,
    )
    from msgraph_beta.generated.models.device_and_app_management_assignment_filter_type import (
        DeviceAndAppManagementAssignmentFilterType as FT,
    )
    from msgraph_beta.generated.models.exclusion_group_assignment_target import ExclusionGroupAssignmentTarget
    from msgraph_beta.generated.models.group_assignment_target import GroupAssignmentTarget

    makers = [
        lambda: AllDevicesAssignmentTarget(),
        lambda: AllLicensedUsersAssignmentTarget(),
        lambda: GroupAssignmentTarget(group_id=group_id),
        lambda: ExclusionGroupAssignmentTarget(group_id=group_id),
        lambda: ConfigurationManagerCollectionAssignmentTarget(collection_id="SMS00001"),
    ]
    out = []
    for make in makers:
        for ft in (FT.None_, FT.Include, FT.Exclude):
            t = make()
            t.device_and_app_management_assignment_filter_type = ft
            if ft != FT.None_:
                t.device_and_app_management_assignment_filter_id = filter_id
            out.append(t)
    return out


def target_key(t):
    """A comparable summary of a target; an unset filter type is the server's default, none."""
    ft = t.device_and_app_management_assignment_filter_type
    return (type(t).__name__, getattr(t, "group_id", None) or "", getattr(t, "collection_id", None) or "",
            t.device_and_app_management_assignment_filter_id or "", ft.value if ft is not None else "none")


async def configurations(beta, group_id, filter_id, page_size):
    from msgraph_beta.generated.device_management.device_enrollment_configurations.device_enrollment_configurations_request_builder import (
        DeviceEnrollmentConfigurationsRequestBuilder as Configs,
    )
    from msgraph_beta.generated.device_management.device_enrollment_configurations.item.assign.assign_post_request_body import (
        AssignPostRequestBody,
    )
    from msgraph_beta.generated.device_management.device_enrollment_configurations.item.assignments.assignments_request_builder import (
        AssignmentsRequestBuilder,
    )
    from msgraph_beta.generated.device_management.device_enrollment_configurations.item.set_priority.set_priority_post_request_body import (
        SetPriorityPostRequestBody,
    )
    from msgraph_beta.generated.models.device_comanagement_authority_configuration import DeviceComanagementAuthorityConfiguration
    from msgraph_beta.generated.models.device_enrollment_limit_configuration import DeviceEnrollmentLimitConfiguration
    from msgraph_beta.generated.models.device_enrollment_notification_configuration import DeviceEnrollmentNotificationConfiguration
    from msgraph_beta.generated.models.device_enrollment_platform_restriction import DeviceEnrollmentPlatformRestriction
    from msgraph_beta.generated.models.device_enrollment_platform_restriction_configuration import (
        DeviceEnrollmentPlatformRestrictionConfiguration,
    )
    from msgraph_beta.generated.models.device_enrollment_platform_restrictions_configuration import (
        DeviceEnrollmentPlatformRestrictionsConfiguration,
    )
    from msgraph_beta.generated.models.device_enrollment_windows_hello_for_business_configuration import (
        DeviceEnrollmentWindowsHelloForBusinessConfiguration,
    )
    from msgraph_beta.generated.models.enablement import Enablement
    from msgraph_beta.generated.models.enrollment_configuration_assignment import EnrollmentConfigurationAssignment
    from msgraph_beta.generated.models.enrollment_restriction_platform_type import EnrollmentRestrictionPlatformType
    from msgraph_beta.generated.models.group_assignment_target import GroupAssignmentTarget
    from msgraph_beta.generated.models.windows10_enrollment_completion_page_configuration import (
        Windows10EnrollmentCompletionPageConfiguration,
    )
    from msgraph_beta.generated.models.windows_restore_device_enrollment_configuration import (
        WindowsRestoreDeviceEnrollmentConfiguration,
    )

    dec = beta.device_management.device_enrollment_configurations
    # One of each derived type (the base type is abstract).
    bodies = [
        (DeviceEnrollmentLimitConfiguration(display_name="SDK limit", limit=7), "_Limit", "limit"),
        (DeviceEnrollmentPlatformRestrictionsConfiguration(display_name="SDK restrictions"),
         "_PlatformRestrictions", "platformRestrictions"),
        (DeviceEnrollmentPlatformRestrictionConfiguration(
            display_name="SDK iOS restriction", platform_type=EnrollmentRestrictionPlatformType.Ios,
            platform_restriction=DeviceEnrollmentPlatformRestriction(platform_blocked=False, personal_device_enrollment_blocked=True)),
         "_SinglePlatformRestriction", "singlePlatformRestriction"),
        (DeviceEnrollmentWindowsHelloForBusinessConfiguration(display_name="SDK WHfB", state=Enablement.Enabled),
         "_WindowsHelloForBusiness", "windowsHelloForBusiness"),
        (Windows10EnrollmentCompletionPageConfiguration(display_name="SDK ESP", show_installation_progress=True),
         "_Windows10EnrollmentCompletionPageConfiguration", "windows10EnrollmentCompletionPageConfiguration"),
        (DeviceComanagementAuthorityConfiguration(display_name="SDK comanagement", managed_device_authority=1),
         "_DeviceComanagementAuthorityConfiguration", "deviceComanagementAuthorityConfiguration"),
        (DeviceEnrollmentNotificationConfiguration(display_name="SDK notification",
                                                   platform_type=EnrollmentRestrictionPlatformType.Windows),
         "_EnrollmentNotificationsConfiguration", "enrollmentNotificationsConfiguration"),
        (WindowsRestoreDeviceEnrollmentConfiguration(display_name="SDK restore", state=Enablement.Enabled),
         "_WindowsRestore", "windowsRestore"),
    ]
    created = {}
    for body, suffix, kind in bodies:
        c = await dec.post(body)
        ok = type(c) is type(body) and c.id.endswith(suffix)
        check(ok, f"create {type(body).__name__}: parsed as {type(c).__name__}, id {c.id}")
        eq(c.device_enrollment_configuration_type.value if c.device_enrollment_configuration_type else None, kind,
           f"{type(body).__name__}.deviceEnrollmentConfigurationType")
        created[type(body).__name__] = c
    limit = created["DeviceEnrollmentLimitConfiguration"]
    eq(limit.limit, 7, "the limit configuration's limit")
    eq(limit.priority, 1, "the first created limit configuration has priority 1")

    # get, update
    item = dec.by_device_enrollment_configuration_id(limit.id)
    got = await item.get()
    eq((type(got).__name__, got.display_name), ("DeviceEnrollmentLimitConfiguration", "SDK limit"), "GET configuration")
    patched = await item.patch(DeviceEnrollmentLimitConfiguration(limit=9, description="patched"))
    eq((patched.limit if patched else None), 9, "PATCH configuration answers the updated entity")
    got = await item.get()
    eq((got.limit, got.description, got.version), (9, "patched", 1), "GET after PATCH (limit, description, version)")

    # assignments: create one of every target x filter type, list them across pages, get, update, delete
    targets = all_targets(group_id, filter_id)
    ids = []
    for t in targets:
        a = await item.assignments.post(EnrollmentConfigurationAssignment(target=t))
        ids.append(a.id)
        eq(target_key(a.target), target_key(t), f"create assignment {target_key(t)[0]}/{target_key(t)[4]}")
    first = await item.assignments.get()
    eq(len(first.value), page_size, "the first page holds --page-size assignments")
    check(bool(first.odata_next_link), f"the first page has a nextLink: {first.odata_next_link}")
    every, pages = await iterate_all(beta, first)
    eq([a.id for a in every], ids, "PageIterator returns every assignment in order")
    check(pages > 2, f"PageIterator followed {pages} pages")
    eq(sorted(target_key(a.target) for a in every), sorted(target_key(t) for t in targets),
       "listed targets are the created ones")

    one = await item.assignments.by_enrollment_configuration_assignment_id(ids[2]).get()
    eq(target_key(one.target), target_key(targets[2]), "GET one assignment")
    new_target = GroupAssignmentTarget(group_id="00000000-0000-0000-0000-0000000000ab")
    await item.assignments.by_enrollment_configuration_assignment_id(ids[2]).patch(
        EnrollmentConfigurationAssignment(target=new_target))
    one = await item.assignments.by_enrollment_configuration_assignment_id(ids[2]).get()
    eq(one.target.group_id, "00000000-0000-0000-0000-0000000000ab", "PATCH one assignment")
    await item.assignments.by_enrollment_configuration_assignment_id(ids[0]).delete()
    await expect_odata_error(item.assignments.by_enrollment_configuration_assignment_id(ids[0]).get(),
                             404, "ResourceNotFound", "GET a deleted assignment")

    # $filter, $select, $top on assignments
    qp = AssignmentsRequestBuilder.AssignmentsRequestBuilderGetQueryParameters(
        filter=f"target/deviceAndAppManagementAssignmentFilterType eq 'include'", top=100)
    inc = await item.assignments.get(RequestConfiguration(query_parameters=qp))
    every_inc = (await iterate_all(beta, inc))[0]
    eq(len(every_inc), 5, "$filter=target/deviceAndAppManagementAssignmentFilterType eq 'include'")

    # assign replaces the whole set; setPriority reorders
    await item.assign.post(AssignPostRequestBody(enrollment_configuration_assignments=[
        EnrollmentConfigurationAssignment(target=t) for t in targets[6:9]]))
    after = (await iterate_all(beta, await item.assignments.get()))[0]
    eq(sorted(target_key(a.target) for a in after), sorted(target_key(t) for t in targets[6:9]),
       "assign replaced the assignments")
    limit2 = await dec.post(DeviceEnrollmentLimitConfiguration(display_name="SDK limit 2", limit=2))
    eq(limit2.priority, 2, "the second limit configuration has priority 2")
    await dec.by_device_enrollment_configuration_id(limit2.id).set_priority.post(SetPriorityPostRequestBody(priority=1))
    eq((await dec.by_device_enrollment_configuration_id(limit2.id).get()).priority, 1, "setPriority moved it to 1")
    eq((await item.get()).priority, 2, "setPriority shifted the other to 2")

    # $select, $filter, $expand=assignments on the configurations, paged by the SDK
    qp = Configs.DeviceEnrollmentConfigurationsRequestBuilderGetQueryParameters(
        select=["id", "displayName", "priority"], filter="startswith(displayName,'SDK')", expand=["assignments"])
    page = await dec.get(RequestConfiguration(query_parameters=qp))
    items, pages = await iterate_all(beta, page)
    eq(sorted(c.display_name for c in items), sorted(["SDK limit 2"] + [b[0].display_name for b in bodies]),
       f"$filter=startswith(displayName,'SDK') over {pages} pages")
    lim = next(c for c in items if c.id == limit.id)
    eq(len(lim.assignments or []), 3, "$expand=assignments on the list")
    eq(lim.description, None, "$select left description out")
    eq(lim.display_name, "SDK limit", "$select kept displayName")

    # errors surface as ODataError with Graph's code
    await expect_odata_error(dec.by_device_enrollment_configuration_id("nope").get(), 404, "ResourceNotFound",
                             "GET an unknown configuration")
    qp = Configs.DeviceEnrollmentConfigurationsRequestBuilderGetQueryParameters(filter="displayName eqq 'x'")
    await expect_odata_error(dec.get(RequestConfiguration(query_parameters=qp)), 400, "BadRequest", "a bad $filter")
    await expect_odata_error(
        dec.by_device_enrollment_configuration_id(limit2.id).set_priority.post(SetPriorityPostRequestBody(priority=0)),
        400, "BadRequest", "setPriority(0)")

    await dec.by_device_enrollment_configuration_id(limit2.id).delete()
    await expect_odata_error(dec.by_device_enrollment_configuration_id(limit2.id).get(), 404, "ResourceNotFound",
                             "GET a deleted configuration")
    return limit.id


async def apple(beta, group_id, filter_id):
    from msgraph_beta.generated.device_management.apple_user_initiated_enrollment_profiles.item.set_priority.set_priority_post_request_body import (
        SetPriorityPostRequestBody,
    )
    from msgraph_beta.generated.models.apple_enrollment_profile_assignment import AppleEnrollmentProfileAssignment
    from msgraph_beta.generated.models.apple_user_initiated_enrollment_profile import AppleUserInitiatedEnrollmentProfile
    from msgraph_beta.generated.models.device_platform_type import DevicePlatformType

    profiles = beta.device_management.apple_user_initiated_enrollment_profiles
    p1 = await profiles.post(AppleUserInitiatedEnrollmentProfile(display_name="SDK iOS", platform=DevicePlatformType.IOS))
    p2 = await profiles.post(AppleUserInitiatedEnrollmentProfile(display_name="SDK macOS", platform=DevicePlatformType.MacOS))
    eq((p1.display_name, p1.platform, p1.priority), ("SDK iOS", DevicePlatformType.IOS, 1), "create an Apple profile")
    item = profiles.by_apple_user_initiated_enrollment_profile_id(p1.id)
    await item.patch(AppleUserInitiatedEnrollmentProfile(description="patched"))
    eq((await item.get()).description, "patched", "PATCH the Apple profile")
    targets = all_targets(group_id, filter_id)
    ids = []
    for t in targets:
        a = await item.assignments.post(AppleEnrollmentProfileAssignment(target=t))
        ids.append(a.id)
    every, pages = await iterate_all(beta, await item.assignments.get())
    eq(sorted(target_key(a.target) for a in every), sorted(target_key(t) for t in targets),
       f"Apple profile assignments: every target and filter type, listed over {pages} pages")
    await item.assignments.by_apple_enrollment_profile_assignment_id(ids[1]).patch(
        AppleEnrollmentProfileAssignment(target=targets[2]))
    eq(target_key((await item.assignments.by_apple_enrollment_profile_assignment_id(ids[1]).get()).target),
       target_key(targets[2]), "PATCH an Apple profile assignment")
    await item.assignments.by_apple_enrollment_profile_assignment_id(ids[1]).delete()
    await expect_odata_error(item.assignments.by_apple_enrollment_profile_assignment_id(ids[1]).get(), 404,
                             "ResourceNotFound", "GET a deleted Apple profile assignment")
    await profiles.by_apple_user_initiated_enrollment_profile_id(p2.id).set_priority.post(SetPriorityPostRequestBody(priority=1))
    eq(((await item.get()).priority, (await profiles.by_apple_user_initiated_enrollment_profile_id(p2.id).get()).priority),
       (2, 1), "setPriority on Apple profiles")
    await profiles.by_apple_user_initiated_enrollment_profile_id(p2.id).delete()
    await expect_odata_error(profiles.by_apple_user_initiated_enrollment_profile_id(p2.id).get(), 404,
                             "ResourceNotFound", "GET a deleted Apple profile")


async def autopilot(beta, group_id, filter_id):
    from msgraph_beta.generated.device_management.windows_autopilot_deployment_profiles.item.assign.assign_post_request_body import (
        AssignPostRequestBody,
    )
    from msgraph_beta.generated.models.active_directory_windows_autopilot_deployment_profile import (
        ActiveDirectoryWindowsAutopilotDeploymentProfile,
    )
    from msgraph_beta.generated.models.azure_a_d_windows_autopilot_deployment_profile import (
        AzureADWindowsAutopilotDeploymentProfile,
    )
    from msgraph_beta.generated.models.windows_autopilot_deployment_profile_assignment import (
        WindowsAutopilotDeploymentProfileAssignment,
    )
    from msgraph_beta.generated.models.windows_autopilot_device_identity import WindowsAutopilotDeviceIdentity

    profiles = beta.device_management.windows_autopilot_deployment_profiles
    p = await profiles.post(AzureADWindowsAutopilotDeploymentProfile(display_name="SDK shared", device_name_template="K-%RAND:4%"))
    eq(type(p).__name__, "AzureADWindowsAutopilotDeploymentProfile", "create an Azure AD Autopilot profile")
    ad = await profiles.post(ActiveDirectoryWindowsAutopilotDeploymentProfile(display_name="SDK hybrid"))
    eq(type(ad).__name__, "ActiveDirectoryWindowsAutopilotDeploymentProfile", "create a hybrid Autopilot profile")
    item = profiles.by_windows_autopilot_deployment_profile_id(p.id)
    await item.patch(AzureADWindowsAutopilotDeploymentProfile(description="patched"))
    eq((await item.get()).description, "patched", "PATCH the Autopilot profile")

    from msgraph_beta.generated.models.all_devices_assignment_target import AllDevicesAssignmentTarget
    from msgraph_beta.generated.models.exclusion_group_assignment_target import ExclusionGroupAssignmentTarget
    from msgraph_beta.generated.models.group_assignment_target import GroupAssignmentTarget

    targets = [GroupAssignmentTarget(group_id=group_id), ExclusionGroupAssignmentTarget(group_id="00000000-0000-0000-0000-0000000000cd"),
               AllDevicesAssignmentTarget()]
    ids = []
    for t in targets:
        a = await item.assignments.post(WindowsAutopilotDeploymentProfileAssignment(target=t))
        ids.append(a.id)
        eq(target_key(a.target), target_key(t), f"create Autopilot assignment {type(t).__name__}")
    eq(ids[0], f"{p.id}_{group_id}_0", "Autopilot assignment ids are {profileId}_{groupId}_0")
    every, _ = await iterate_all(beta, await item.assignments.get())
    eq([a.id for a in every], ids, "list Autopilot assignments")
    await item.assignments.by_windows_autopilot_deployment_profile_assignment_id(ids[1]).delete()
    await expect_odata_error(item.assignments.by_windows_autopilot_deployment_profile_assignment_id(ids[1]).get(), 404,
                             "ResourceNotFound", "GET a deleted Autopilot assignment")

    devices = beta.device_management.windows_autopilot_device_identities
    d = await devices.post(WindowsAutopilotDeviceIdentity(serial_number="SDK-SN-1", group_tag="kiosk"))
    eq(d.serial_number, "SDK-SN-1", "create an Autopilot device identity")
    await item.assign.post(AssignPostRequestBody(device_ids=[d.id]))
    dp = await devices.by_windows_autopilot_device_identity_id(d.id).deployment_profile.get()
    eq(dp.id if dp else None, p.id, "the profile's assign(deviceIds) set the device's deploymentProfile")
    # The SDK has no builder for deploymentProfile/assignments (clients.md §2): with_url.
    url = f"{beta.request_adapter.base_url}/deviceManagement/windowsAutopilotDeviceIdentities/{d.id}/deploymentProfile/assignments"
    via_device = await item.assignments.with_url(url).get()
    eq(sorted(a.id for a in via_device.value), sorted([ids[0], ids[2]]), "deploymentProfile/assignments via the device")
    await devices.by_windows_autopilot_device_identity_id(d.id).delete()


async def v1(group_id):
    from msgraph.generated.device_management.device_enrollment_configurations.item.assign.assign_post_request_body import (
        AssignPostRequestBody,
    )
    from msgraph.generated.device_management.device_enrollment_configurations.item.set_priority.set_priority_post_request_body import (
        SetPriorityPostRequestBody,
    )
    from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
    from msgraph.generated.models.all_licensed_users_assignment_target import AllLicensedUsersAssignmentTarget
    from msgraph.generated.models.device_enrollment_limit_configuration import DeviceEnrollmentLimitConfiguration
    from msgraph.generated.models.device_enrollment_windows_hello_for_business_configuration import (
        DeviceEnrollmentWindowsHelloForBusinessConfiguration,
    )
    from msgraph.generated.models.enrollment_configuration_assignment import EnrollmentConfigurationAssignment
    from msgraph.generated.models.group_assignment_target import GroupAssignmentTarget

    # v1.0 signs in with the synchronous credential (msal: OIDC discovery, then the token
    # request); beta uses the asynchronous one (its own aiohttp client, no discovery).
    from azure.identity import ClientSecretCredential as SyncClientSecretCredential

    sync_cred = SyncClientSecretCredential(env("TENANT"), env("CLIENT_ID"), env("CLIENT_SECRET"),
                                           **authority_options())
    client = v1_client(sync_cred)
    dec = client.device_management.device_enrollment_configurations
    c = await dec.post(DeviceEnrollmentLimitConfiguration(display_name="v1 limit", limit=4))
    eq((type(c).__name__, c.limit), ("DeviceEnrollmentLimitConfiguration", 4), "v1.0: create a limit configuration")
    w = await dec.post(DeviceEnrollmentWindowsHelloForBusinessConfiguration(display_name="v1 WHfB"))
    eq(type(w).__name__, "DeviceEnrollmentWindowsHelloForBusinessConfiguration", "v1.0: create WHfB")
    item = dec.by_device_enrollment_configuration_id(c.id)
    await item.patch(DeviceEnrollmentLimitConfiguration(limit=5))
    eq((await item.get()).limit, 5, "v1.0: PATCH")
    a = await item.assignments.post(EnrollmentConfigurationAssignment(target=GroupAssignmentTarget(group_id=group_id)))
    eq(a.target.group_id, group_id, "v1.0: create an assignment")
    eq((await item.assignments.by_enrollment_configuration_assignment_id(a.id).get()).target.group_id, group_id,
       "v1.0: GET the assignment")
    await item.assign.post(AssignPostRequestBody(enrollment_configuration_assignments=[
        EnrollmentConfigurationAssignment(target=AllLicensedUsersAssignmentTarget()),
        EnrollmentConfigurationAssignment(target=GroupAssignmentTarget(group_id=group_id))]))
    every, _ = await iterate_all(client, await item.assignments.get())
    eq(sorted(type(x.target).__name__ for x in every), ["AllLicensedUsersAssignmentTarget", "GroupAssignmentTarget"],
       "v1.0: assign replaced the set")
    await item.assignments.by_enrollment_configuration_assignment_id(every[0].id).delete()
    eq(len((await item.assignments.get()).value), 1, "v1.0: DELETE an assignment")
    await item.set_priority.post(SetPriorityPostRequestBody(priority=1))
    eq((await item.get()).priority, 1, "v1.0: setPriority")
    listed, pages = await iterate_all(client, await dec.get())
    check(all(type(x).__name__ != "DeviceEnrollmentConfiguration" for x in listed) and len(listed) >= 6,
          f"v1.0: list {len(listed)} configurations over {pages} pages, each of a v1.0 derived type")
    qp = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(filter="displayName eq 'SDK Kiosks'", select=["id"])
    g = await client.groups.get(RequestConfiguration(query_parameters=qp))
    eq([x.id for x in g.value], [group_id], "v1.0: GET /groups?$filter=displayName eq ...")
    await expect_odata_error(dec.by_device_enrollment_configuration_id("nope").get(), 404, "ResourceNotFound",
                             "v1.0: GET an unknown configuration")
    await item.delete()


async def main():
    page_size = int(env("PAGE_SIZE"))
    cred = credential()
    async with cred:
        beta = beta_client(cred)
        print("== groups and assignment filters", flush=True)
        try:
            group_id, filter_id = await groups_and_filters(beta)
        except Exception:  # noqa: BLE001 - a client error is a failed check, with its trace
            traceback.print_exc()
            check(False, "groups and assignment filters raised")
            return
        for name, step in [
            ("enrollment configurations", lambda: configurations(beta, group_id, filter_id, page_size)),
            ("Apple user-initiated profiles", lambda: apple(beta, group_id, filter_id)),
            ("Autopilot", lambda: autopilot(beta, group_id, filter_id)),
            ("v1.0 (msgraph-sdk)", lambda: v1(group_id)),
        ]:
            print(f"== {name}", flush=True)
            try:
                await step()
            except Exception:  # noqa: BLE001
                traceback.print_exc()
                check(False, f"{name} raised")


if __name__ == "__main__":
    asyncio.run(main())
    finish()
