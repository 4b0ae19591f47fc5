pragma solidity ^0.7.6;

interface IReceiver {
    function onTokensReceived(address from, uint256 amount) external;
}

// Balances move first; the hook runs last.
contract HookToken {
    mapping(address => uint256) public balanceOf;

    constructor() {
        balanceOf[msg.sender] = 1000000;
    }

    function transferAndNotify(address to, uint256 amount) external {
        require(balanceOf[msg.sender] >= amount, "balance");
        balanceOf[msg.sender] -= amount;
        balanceOf[to] += amount;
        IReceiver(to).onTokensReceived(msg.sender, amount);
    }
}
