pragma solidity ^0.6.4;

// Only plugins the owner approved can run.
contract PluginWallet {
    address public owner;
    mapping(address => bool) public approvedPlugin;

    constructor() public {
        owner = msg.sender;
    }

    receive() external payable {}

    function approve(address plugin) external {
        require(msg.sender == owner, "owner");
        approvedPlugin[plugin] = true;
    }

    function runPlugin(address plugin, bytes calldata data) external {
        require(msg.sender == owner, "owner");
        require(approvedPlugin[plugin], "unknown plugin");
        (bool ok, ) = plugin.delegatecall(data);
        require(ok, "plugin failed");
    }

    function withdraw() external {
        require(msg.sender == owner, "owner");
        msg.sender.transfer(address(this).balance);
    }
}
