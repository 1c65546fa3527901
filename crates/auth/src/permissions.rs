//! The Graph permission names of the enrollment operations (`operations.md`: the union of
//! the newest Microsoft Graph API reference pages; rulings 1).

/// `DeviceManagementServiceConfig.Read.All`.
pub const SERVICE_CONFIG_READ_ALL: &str = "DeviceManagementServiceConfig.Read.All";
/// `DeviceManagementServiceConfig.ReadWrite.All`.
pub const SERVICE_CONFIG_READ_WRITE_ALL: &str = "DeviceManagementServiceConfig.ReadWrite.All";
/// `DeviceManagementConfiguration.Read.All`.
pub const CONFIGURATION_READ_ALL: &str = "DeviceManagementConfiguration.Read.All";
/// `DeviceManagementConfiguration.ReadWrite.All`.
pub const CONFIGURATION_READ_WRITE_ALL: &str = "DeviceManagementConfiguration.ReadWrite.All";

/// `Group.ReadWrite.All`: the development app's permission on `groups` (behaviour.json
/// `permissions`), so that it can create the groups it assigns to.
pub const GROUP_READ_WRITE_ALL: &str = "Group.ReadWrite.All";

/// Any of these permits a read (GET) of an enrollment resource (least to most privileged).
pub const READ: &[&str] =
    &[SERVICE_CONFIG_READ_ALL, CONFIGURATION_READ_ALL, SERVICE_CONFIG_READ_WRITE_ALL, CONFIGURATION_READ_WRITE_ALL];

/// Any of these permits a write (POST, PATCH, DELETE, actions).
pub const WRITE: &[&str] = &[SERVICE_CONFIG_READ_WRITE_ALL, CONFIGURATION_READ_WRITE_ALL];

/// Every permission this server knows, for a development app that may do everything.
pub const ALL: &[&str] = READ;
