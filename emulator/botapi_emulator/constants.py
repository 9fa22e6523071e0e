"""Method names, limits and enumerations of the Telegram Bot API."""

from __future__ import annotations

# Every Bot API method (as of Bot API 9.x). Methods the emulator does not implement answer
# 501 instead of the 404 an unknown method gets.
ALL_METHODS = frozenset(
    {
        "addStickerToSet", "answerCallbackQuery", "answerGuestQuery", "answerInlineQuery",
        "answerPreCheckoutQuery", "answerShippingQuery", "answerWebAppQuery",
        "approveChatJoinRequest", "approveSuggestedPost", "banChatMember", "banChatSenderChat",
        "closeForumTopic", "closeGeneralForumTopic", "convertGiftToStars", "copyMessage",
        "copyMessages", "createChatInviteLink", "createChatSubscriptionInviteLink",
        "createForumTopic", "createInvoiceLink", "createNewStickerSet",
        "declineChatJoinRequest", "declineSuggestedPost", "deleteAllMessageReactions",
        "deleteBusinessMessages", "deleteChatPhoto", "deleteChatStickerSet", "deleteForumTopic",
        "deleteMessage", "deleteMessageReaction", "deleteMessages", "deleteMyCommands",
        "deleteStickerFromSet", "deleteStickerSet", "deleteStory", "deleteWebhook",
        "editChatInviteLink", "editChatSubscriptionInviteLink", "editForumTopic",
        "editGeneralForumTopic", "editMessageCaption", "editMessageChecklist",
        "editMessageLiveLocation", "editMessageMedia", "editMessageReplyMarkup",
        "editMessageText", "editStory", "editUserStarSubscription", "exportChatInviteLink",
        "forwardMessage", "forwardMessages", "getAvailableGifts", "getBusinessAccountGifts",
        "getBusinessAccountStarBalance", "getBusinessConnection", "getChat",
        "getChatAdministrators", "getChatGifts", "getChatMember", "getChatMemberCount",
        "getChatMenuButton", "getCustomEmojiStickers", "getFile", "getForumTopicIconStickers",
        "getGameHighScores", "getManagedBotAccessSettings", "getManagedBotToken", "getMe",
        "getMyCommands", "getMyDefaultAdministratorRights", "getMyDescription", "getMyName",
        "getMyShortDescription", "getMyStarBalance", "getStarTransactions", "getStickerSet",
        "getUpdates", "getUserChatBoosts", "getUserGifts", "getUserPersonalChatMessages",
        "getUserProfileAudios", "getUserProfilePhotos", "getWebhookInfo",
        "giftPremiumSubscription", "hideGeneralForumTopic", "leaveChat", "logOut",
        "pinChatMessage", "postStory", "promoteChatMember", "readBusinessMessage",
        "refundStarPayment", "removeBusinessAccountProfilePhoto", "removeChatVerification",
        "removeMyProfilePhoto", "removeUserVerification", "reopenForumTopic",
        "reopenGeneralForumTopic", "replaceManagedBotToken", "replaceStickerInSet",
        "repostStory", "restrictChatMember", "revokeChatInviteLink",
        "savePreparedInlineMessage", "savePreparedKeyboardButton", "sendAnimation", "sendAudio",
        "sendChatAction", "sendChecklist", "sendContact", "sendDice", "sendDocument",
        "sendGame", "sendGift", "sendInvoice", "sendLivePhoto", "sendLocation",
        "sendMediaGroup", "sendMessage", "sendMessageDraft", "sendPaidMedia", "sendPhoto",
        "sendPoll", "sendSticker", "sendVenue", "sendVideo", "sendVideoNote", "sendVoice",
        "setBusinessAccountBio", "setBusinessAccountGiftSettings", "setBusinessAccountName",
        "setBusinessAccountProfilePhoto", "setBusinessAccountUsername",
        "setChatAdministratorCustomTitle", "setChatDescription", "setChatMemberTag",
        "setChatMenuButton", "setChatPermissions", "setChatPhoto", "setChatStickerSet",
        "setChatTitle", "setCustomEmojiStickerSetThumbnail", "setGameScore",
        "setManagedBotAccessSettings", "setMessageReaction", "setMyCommands",
        "setMyDefaultAdministratorRights", "setMyDescription", "setMyName", "setMyProfilePhoto",
        "setMyShortDescription", "setPassportDataErrors", "setStickerEmojiList",
        "setStickerKeywords", "setStickerMaskPosition", "setStickerPositionInSet",
        "setStickerSetThumbnail", "setStickerSetTitle", "setUserEmojiStatus", "setWebhook",
        "stopMessageLiveLocation", "stopPoll", "transferBusinessAccountStars", "transferGift",
        "unbanChatMember", "unbanChatSenderChat", "unhideGeneralForumTopic",
        "unpinAllChatMessages", "unpinAllForumTopicMessages",
        "unpinAllGeneralForumTopicMessages", "unpinChatMessage", "upgradeGift",
        "uploadStickerFile", "verifyChat", "verifyUser"
    }
)

# Real methods without interesting effects here: they answer ``true`` and are recorded.
TRUE_METHODS = frozenset(
    {
        "setChatMenuButton", "setMessageReaction", "pinChatMessage", "unpinChatMessage",
        "unpinAllChatMessages", "leaveChat", "setMyDefaultAdministratorRights", "banChatMember",
        "unbanChatMember", "restrictChatMember", "promoteChatMember", "setChatTitle",
        "setChatDescription", "setChatPermissions", "approveChatJoinRequest",
        "declineChatJoinRequest", "setChatAdministratorCustomTitle", "answerPreCheckoutQuery",
        "answerShippingQuery", "setMyProfilePhoto", "removeMyProfilePhoto"
    }
)
_ALL_LOWER = {name.lower(): name for name in ALL_METHODS}


def canonical_method(name: str) -> str | None:
    """Return the canonical spelling of a method name (Telegram ignores case), or None."""
    return _ALL_LOWER.get(name.lower())


CHAT_ACTIONS = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice",
        "upload_voice", "upload_document", "choose_sticker", "find_location",
        "record_video_note", "upload_video_note"
    }
)

UPDATE_TYPES = (
    "message", "edited_message", "channel_post", "edited_channel_post", "business_connection",
    "business_message", "edited_business_message", "deleted_business_messages",
    "message_reaction", "message_reaction_count", "inline_query", "chosen_inline_result",
    "callback_query", "shipping_query", "pre_checkout_query", "purchased_paid_media", "poll",
    "poll_answer", "my_chat_member", "chat_member", "chat_join_request", "chat_boost",
    "removed_chat_boost",
)
# Update types delivered when allowed_updates was never set (or set to []).
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

MAX_MESSAGE_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_INLINE_RESULTS = 50
MAX_COMMANDS = 100
INLINE_RESULT_TYPES = frozenset(
    {
        "article", "photo", "gif", "mpeg4_gif", "video", "audio", "voice", "document",
        "location", "venue", "contact", "game", "sticker"
    }
)
