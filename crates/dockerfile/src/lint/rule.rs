//! BuildKit's 22 build-check rules: names, descriptions and documentation links.

/// A BuildKit build-check rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    StageNameCasing,
    FromAsCasing,
    NoEmptyContinuation,
    ConsistentInstructionCasing,
    DuplicateStageName,
    ReservedStageName,
    JsonArgsRecommended,
    MaintainerDeprecated,
    UndefinedArgInFrom,
    WorkdirRelativePath,
    UndefinedVar,
    MultipleInstructionsDisallowed,
    LegacyKeyValueFormat,
    InvalidBaseImagePlatform,
    RedundantTargetPlatform,
    SecretsUsedInArgOrEnv,
    InvalidDefaultArgInFrom,
    FromPlatformFlagConstDisallowed,
    CopyIgnoredFile,
    InvalidDefinitionDescription,
    ExposeProtoCasing,
    ExposeInvalidFormat,
}

/// What BuildKit's rule registry says about a rule.
struct Info {
    name: &'static str,
    description: &'static str,
    /// The `docs.docker.com/go/dockerfile/rule/` page; InvalidBaseImagePlatform has none.
    page: Option<&'static str>,
}

const fn info(name: &'static str, page: &'static str, description: &'static str) -> Info {
    Info {
        name,
        description,
        page: Some(page),
    }
}

impl Rule {
    pub const ALL: [Rule; 22] = [
        Rule::StageNameCasing,
        Rule::FromAsCasing,
        Rule::NoEmptyContinuation,
        Rule::ConsistentInstructionCasing,
        Rule::DuplicateStageName,
        Rule::ReservedStageName,
        Rule::JsonArgsRecommended,
        Rule::MaintainerDeprecated,
        Rule::UndefinedArgInFrom,
        Rule::WorkdirRelativePath,
        Rule::UndefinedVar,
        Rule::MultipleInstructionsDisallowed,
        Rule::LegacyKeyValueFormat,
        Rule::InvalidBaseImagePlatform,
        Rule::RedundantTargetPlatform,
        Rule::SecretsUsedInArgOrEnv,
        Rule::InvalidDefaultArgInFrom,
        Rule::FromPlatformFlagConstDisallowed,
        Rule::CopyIgnoredFile,
        Rule::InvalidDefinitionDescription,
        Rule::ExposeProtoCasing,
        Rule::ExposeInvalidFormat,
    ];

    fn info(self) -> Info {
        match self {
            Rule::StageNameCasing => info(
                "StageNameCasing",
                "stage-name-casing",
                "Stage names should be lowercase",
            ),
            Rule::FromAsCasing => info(
                "FromAsCasing",
                "from-as-casing",
                "The 'as' keyword should match the case of the 'from' keyword",
            ),
            Rule::NoEmptyContinuation => info(
                "NoEmptyContinuation",
                "no-empty-continuation",
                "Empty continuation lines will become errors in a future release",
            ),
            Rule::ConsistentInstructionCasing => info(
                "ConsistentInstructionCasing",
                "consistent-instruction-casing",
                "All commands within the Dockerfile should use the same casing (either upper or lower)",
            ),
            Rule::DuplicateStageName => info(
                "DuplicateStageName",
                "duplicate-stage-name",
                "Stage names should be unique",
            ),
            Rule::ReservedStageName => info(
                "ReservedStageName",
                "reserved-stage-name",
                "Reserved words should not be used as stage names",
            ),
            Rule::JsonArgsRecommended => info(
                "JSONArgsRecommended",
                "json-args-recommended",
                "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals",
            ),
            Rule::MaintainerDeprecated => info(
                "MaintainerDeprecated",
                "maintainer-deprecated",
                "The MAINTAINER instruction is deprecated, use a label instead to define an image author",
            ),
            Rule::UndefinedArgInFrom => info(
                "UndefinedArgInFrom",
                "undefined-arg-in-from",
                "FROM command must use declared ARGs",
            ),
            Rule::WorkdirRelativePath => info(
                "WorkdirRelativePath",
                "workdir-relative-path",
                "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes",
            ),
            Rule::UndefinedVar => info(
                "UndefinedVar",
                "undefined-var",
                "Variables should be defined before their use",
            ),
            Rule::MultipleInstructionsDisallowed => info(
                "MultipleInstructionsDisallowed",
                "multiple-instructions-disallowed",
                "Multiple instructions of the same type should not be used in the same stage",
            ),
            Rule::LegacyKeyValueFormat => info(
                "LegacyKeyValueFormat",
                "legacy-key-value-format",
                "Legacy key/value format with whitespace separator should not be used",
            ),
            Rule::InvalidBaseImagePlatform => Info {
                name: "InvalidBaseImagePlatform",
                description: "Base image platform does not match expected target platform",
                page: None,
            },
            Rule::RedundantTargetPlatform => info(
                "RedundantTargetPlatform",
                "redundant-target-platform",
                "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior",
            ),
            Rule::SecretsUsedInArgOrEnv => info(
                "SecretsUsedInArgOrEnv",
                "secrets-used-in-arg-or-env",
                "Sensitive data should not be used in the ARG or ENV commands",
            ),
            Rule::InvalidDefaultArgInFrom => info(
                "InvalidDefaultArgInFrom",
                "invalid-default-arg-in-from",
                "Default value for global ARG results in an empty or invalid base image name",
            ),
            Rule::FromPlatformFlagConstDisallowed => info(
                "FromPlatformFlagConstDisallowed",
                "from-platform-flag-const-disallowed",
                "FROM --platform flag should not use a constant value",
            ),
            Rule::CopyIgnoredFile => info(
                "CopyIgnoredFile",
                "copy-ignored-file",
                "Attempting to Copy file that is excluded by .dockerignore",
            ),
            Rule::InvalidDefinitionDescription => info(
                "InvalidDefinitionDescription",
                "invalid-definition-description",
                "Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment.",
            ),
            Rule::ExposeProtoCasing => info(
                "ExposeProtoCasing",
                "expose-proto-casing",
                "Protocol in EXPOSE instruction should be lowercase",
            ),
            Rule::ExposeInvalidFormat => info(
                "ExposeInvalidFormat",
                "expose-invalid-format",
                "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release",
            ),
        }
    }

    /// BuildKit's rule name (used in `# check=skip=`).
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// BuildKit's one-line description of the rule.
    pub fn description(self) -> &'static str {
        self.info().description
    }

    /// The rule's documentation page, as BuildKit links it.
    pub fn url(self) -> Option<String> {
        self.info()
            .page
            .map(|p| format!("https://docs.docker.com/go/dockerfile/rule/{p}/"))
    }

    /// Experimental rules run only when `# check=experimental=` names them (or `all`).
    pub fn experimental(self) -> bool {
        self == Rule::InvalidDefinitionDescription
    }

    /// BuildKit checks these while it dispatches a stage, so a build reports them only
    /// for the stages the target needs; the others are checked for the whole file.
    pub fn per_stage(self) -> bool {
        matches!(
            self,
            Rule::JsonArgsRecommended
                | Rule::WorkdirRelativePath
                | Rule::UndefinedVar
                | Rule::MultipleInstructionsDisallowed
                | Rule::LegacyKeyValueFormat
                | Rule::InvalidBaseImagePlatform
                | Rule::SecretsUsedInArgOrEnv
                | Rule::CopyIgnoredFile
                | Rule::ExposeProtoCasing
                | Rule::ExposeInvalidFormat
        )
    }

    /// Whether a `# check=` comment above an instruction applies to this rule there.
    /// BuildKit checks these over the whole file with the file's configuration only.
    pub(crate) fn local(self) -> bool {
        !matches!(
            self,
            Rule::NoEmptyContinuation
                | Rule::ConsistentInstructionCasing
                | Rule::DuplicateStageName
                | Rule::ReservedStageName
                | Rule::InvalidDefaultArgInFrom
        )
    }
}
